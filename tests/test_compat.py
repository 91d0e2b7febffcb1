"""Models saved by sklearn-gpt2 0.1.0 load in this release and predict identically.

The artifacts under ``tests/artifacts/v0_1_0`` were written by 0.1.0 (see their README): a
joblib file, a skops file and a ``save_pretrained`` directory of one tiny fitted classifier,
with the probabilities 0.1.0 gave for four texts.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.datasets import build_tiny_gpt2

ARTIFACTS = Path(__file__).parent / "artifacts" / "v0_1_0"
EXPECTED = json.loads((ARTIFACTS / "expected.json").read_text())
#: The demo data of 0.1.0, which the artifacts were fitted on (the demo has changed since).
TRAIN = json.loads((ARTIFACTS / "train.json").read_text())
OLD_TYPE = "sklearn_gpt2._classifier.GPT2SequenceClassifier"


def check(clf):
    assert type(clf).__module__ + "." + type(clf).__name__ == OLD_TYPE
    assert clf.classes_.tolist() == EXPECTED["classes"]
    np.testing.assert_array_equal(clf.predict_proba(EXPECTED["texts"]), EXPECTED["proba"])


def test_joblib_file_from_0_1_0_predicts_identically():
    check(joblib.load(ARTIFACTS / "classifier.joblib"))


def test_directory_from_0_1_0_predicts_identically(tmp_path):
    # Loading must not write into the directory: copy it so the artifact stays pristine.
    directory = shutil.copytree(ARTIFACTS / "classifier_dir", tmp_path / "classifier_dir")
    check(GPT2SequenceClassifier.from_pretrained(directory))


def test_skops_file_from_0_1_0_loads_with_the_old_trust_list():
    sio = pytest.importorskip("skops.io")
    path = ARTIFACTS / "classifier.skops"
    assert sio.get_untrusted_types(file=path) == [OLD_TYPE]
    check(sio.load(path, trusted=[OLD_TYPE]))


def test_a_state_from_a_newer_release_names_both_versions():
    state = joblib.load(ARTIFACTS / "classifier.joblib").__getstate__()
    state["format_version"] = 99
    state["versions"]["sklearn_gpt2"] = "9.0"
    blob = pickle.dumps(state)
    with pytest.raises(
        ValueError, match=r"format version 99 by sklearn-gpt2 9\.0.*reads versions up to"
    ):
        GPT2SequenceClassifier().__setstate__(pickle.loads(blob))


def test_fitting_as_0_1_0_did_gives_its_probabilities(tmp_path):
    """Same checkpoint, data and parameters: the restructured package trains the same model."""
    X, y = TRAIN["texts"], TRAIN["labels"]
    checkpoint = build_tiny_gpt2(
        tmp_path / "ckpt", X, vocab_size=300, n_layer=1, n_head=2, n_embd=16, n_positions=64
    )
    clf = GPT2SequenceClassifier(
        checkpoint, max_length=32, max_epochs=1, batch_size=8, random_state=0, lr=1e-3
    ).fit(X, y)
    np.testing.assert_allclose(
        clf.predict_proba(EXPECTED["texts"]), EXPECTED["proba"], atol=1e-5, rtol=0
    )


def test_import_leaves_torch_and_transformers_unimported():
    code = (
        "import sys, sklearn_gpt2; "
        "print(sklearn_gpt2.__version__); "
        "heavy = sorted(m for m in ('torch', 'transformers', 'skorch') if m in sys.modules); "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_names_resolve_lazily():
    code = (
        "import sys, sklearn_gpt2; "
        "from sklearn_gpt2 import GPT2SequenceClassifier; "
        "assert 'torch' in sys.modules; "
        "assert GPT2SequenceClassifier.__module__ == 'sklearn_gpt2._classifier'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
