"""Models saved by sklearn-gpt2 0.2.0 load in this release and predict identically.

The artifacts under ``tests/artifacts/v0_2_0`` were written by 0.2.0 with
``tests/artifacts/make_v0_2_0.py``: one tiny classifier per training mode and one prompt
classifier, each as joblib, skops and a ``save_pretrained`` directory, plus saves by reference
for the LoRA and head modes against the shipped ``base`` checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier

ARTIFACTS = Path(__file__).parent / "artifacts" / "v0_2_0"
EXPECTED = json.loads((ARTIFACTS / "expected.json").read_text())
TEXTS = EXPECTED["texts"]
NAMES = ["sequence_full", "sequence_lora", "sequence_head", "prompt"]
TYPES = {
    "sequence": "sklearn_gpt2._classifier.GPT2SequenceClassifier",
    "prompt": "sklearn_gpt2._prompt_classifier.GPT2PromptClassifier",
}


def check(clf, name):
    expected = EXPECTED["models"][name]
    assert clf.classes_.tolist() == expected["classes"]
    np.testing.assert_array_equal(clf.predict_proba(TEXTS), np.asarray(expected["proba"]))


def estimator_class(name):
    return GPT2PromptClassifier if name == "prompt" else GPT2SequenceClassifier


@pytest.mark.parametrize("name", NAMES)
def test_joblib_file_from_0_2_0_predicts_identically(name):
    check(joblib.load(ARTIFACTS / f"{name}.joblib"), name)


@pytest.mark.parametrize("name", NAMES)
def test_skops_file_from_0_2_0_predicts_identically(name):
    sio = pytest.importorskip("skops.io")
    path = ARTIFACTS / f"{name}.skops"
    trusted = TYPES[name.split("_")[0]]
    assert sio.get_untrusted_types(file=path) == [trusted]
    check(sio.load(path, trusted=[trusted]), name)


@pytest.mark.parametrize("name", NAMES)
def test_directory_from_0_2_0_predicts_identically(name, tmp_path):
    directory = shutil.copytree(ARTIFACTS / f"{name}_dir", tmp_path / name)
    check(estimator_class(name).from_pretrained(directory), name)


@pytest.mark.parametrize("name", ["sequence_lora", "sequence_head"])
def test_save_by_reference_from_0_2_0_predicts_identically(name, tmp_path):
    directory = shutil.copytree(ARTIFACTS / f"{name}_ref", tmp_path / name)
    base = shutil.copytree(ARTIFACTS / "base", tmp_path / "base")
    check(GPT2SequenceClassifier.from_pretrained(directory, base=base), name)
