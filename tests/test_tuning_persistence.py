"""Every training mode round-trips through joblib and save_pretrained; saves by reference.

``save_pretrained(directory, base="reference")`` writes only what a head or LoRA fit trained,
with the base checkpoint's name and weight fingerprint; loading it needs that base, unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.datasets import build_tiny_gpt2
from sklearn_gpt2.persistence.format import MANIFEST

PROBE = ["a wonderful film", "dull and far too long", "", "it is bad <|endoftext|>", "é 😀"]
LR = {"full": 1e-3, "head": 1e-2, "lora": 5e-3}


@pytest.fixture(scope="module")
def base(tmp_path_factory, demo_data):
    """A checkpoint of this module's own, so it can be moved and altered."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("base"), demo_data[0])


@pytest.fixture(scope="module", params=["full", "head", "lora"])
def fitted(request, base, demo_data):
    clf = GPT2SequenceClassifier(
        str(base),
        tuning=request.param,
        lr=LR[request.param],
        max_epochs=2,
        max_length=16,
        batch_size=8,
        precision="float32",
        random_state=0,
        class_weight={"positive": 2.0},
    )
    return clf.fit(*demo_data)


def test_joblib_round_trip(fitted, tmp_path, demo_data):
    loaded = joblib.load(joblib.dump(fitted, tmp_path / "clf.joblib")[0])
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), fitted.predict_proba(PROBE))
    loaded.partial_fit(*demo_data)  # trains in its mode, with a fresh optimizer
    assert len(loaded.history_) == len(fitted.history_) + 2


def test_directory_round_trip(fitted, tmp_path, demo_data):
    loaded = GPT2SequenceClassifier.from_pretrained(fitted.save_pretrained(tmp_path / "clf"))
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), fitted.predict_proba(PROBE))
    trainable = {n for n, p in loaded.module_.named_parameters() if p.requires_grad}
    assert trainable == {n for n, p in fitted.module_.named_parameters() if p.requires_grad}
    before = loaded.predict_proba(PROBE)
    loaded.partial_fit(*demo_data)
    after = loaded.predict_proba(PROBE)
    assert not np.allclose(after, before), "partial_fit on a loaded model must train it"
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-9)


def test_lora_directory_is_a_plain_model_plus_adapters(base, demo_data, tmp_path):
    clf = GPT2SequenceClassifier(
        str(base),
        tuning="lora",
        max_epochs=1,
        max_length=16,
        precision="float32",
        random_state=0,
    ).fit(*demo_data)
    directory = clf.save_pretrained(tmp_path / "lora")
    assert (directory / "adapter" / "adapter_config.json").is_file()
    assert (directory / "adapter" / "adapter_model.safetensors").is_file()
    # transformers opens the backbone (without adapters) with no warnings about odd keys.
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    assert not any("lora" in name for name, _ in model.named_parameters())
    # Plain peft puts the adapters on it and predicts what the classifier predicts.
    _assert_plain_peft_predicts_as(clf, PeftModel.from_pretrained(model, directory / "adapter"))


def _tokens(clf, text):
    # As the classifier cuts a text: its first max_length tokens.
    return clf.tokenizer_(text, truncation=True, max_length=clf.max_length, return_tensors="pt")


def _assert_plain_peft_predicts_as(clf, peft_model):
    peft_model.eval()
    texts = ["a wonderful film", "dull and tedious", "the cast was superb but the plot was thin"]
    with torch.no_grad():
        plain = np.vstack(
            [
                torch.softmax(peft_model(**_tokens(clf, text)).logits.double(), -1).numpy()
                for text in texts
            ]
        )
    np.testing.assert_allclose(plain, clf.predict_proba(texts), atol=1e-5, rtol=0)
    assert not np.allclose(plain[:, 0], 0.5, atol=1e-3), "the adapters change the predictions"


def test_lora_save_by_reference_is_a_peft_adapter_directory(base, demo_data, tmp_path):
    clf = GPT2SequenceClassifier(
        str(base),
        tuning="lora",
        lr=1e-2,
        max_epochs=2,
        max_length=16,
        precision="float32",
        random_state=0,
    ).fit(*demo_data)
    directory = clf.save_pretrained(tmp_path / "lora_ref", base="reference")
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=2)
    model.config.pad_token_id = clf.tokenizer_.pad_token_id
    _assert_plain_peft_predicts_as(clf, PeftModel.from_pretrained(model, directory))


@pytest.fixture(scope="module", params=["head", "lora"])
def small(request, base, demo_data, tmp_path_factory):
    clf = GPT2SequenceClassifier(
        str(base),
        tuning=request.param,
        lr=LR[request.param],
        max_epochs=2,
        max_length=16,
        batch_size=8,
        precision="float32",
        random_state=0,
    ).fit(*demo_data)
    full = clf.save_pretrained(tmp_path_factory.mktemp("full") / request.param)
    ref = clf.save_pretrained(tmp_path_factory.mktemp("ref") / request.param, base="reference")
    return clf, full, ref


def _size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir())


def test_save_by_reference_holds_only_what_was_trained(small):
    clf, full, ref = small
    trained = (
        ["adapter_config.json", "adapter_model.safetensors"]
        if clf.tuning == "lora"
        else ["trained.safetensors"]
    )
    assert sorted(p.name for p in ref.iterdir()) == sorted([MANIFEST, *trained])
    assert _size(ref) < _size(full) / 2
    manifest = json.loads((ref / MANIFEST).read_text())
    assert manifest["base"]["model_name_or_path"] == str(Path(clf.model_name_or_path).resolve())
    assert len(manifest["base"]["weights_sha256"]) == 64
    loaded = GPT2SequenceClassifier.from_pretrained(ref)
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), clf.predict_proba(PROBE))


def test_save_by_reference_finds_a_moved_base(small, base, tmp_path):
    clf, _, ref = small
    moved = shutil.copytree(base, tmp_path / "moved-base")
    loaded = GPT2SequenceClassifier.from_pretrained(ref, base=moved)
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), clf.predict_proba(PROBE))
    assert loaded.model_name_or_path == str(moved)


def test_save_by_reference_without_its_base_names_it(small, tmp_path):
    _, _, ref = small
    with pytest.raises(FileNotFoundError, match=r"needs its base checkpoint '.*base.*'"):
        GPT2SequenceClassifier.from_pretrained(ref, base=tmp_path / "nowhere")


def test_save_by_reference_refuses_a_different_base(small, demo_data, tmp_path):
    _, _, ref = small
    other = build_tiny_gpt2(tmp_path / "other", demo_data[0], seed=1)
    with pytest.raises(ValueError, match=r"needs its base checkpoint .*different weights"):
        GPT2SequenceClassifier.from_pretrained(ref, base=other)


@pytest.mark.parametrize("edit", ["tokenizer", "config"])
def test_save_by_reference_refuses_a_base_with_other_text_handling(small, base, tmp_path, edit):
    _, _, ref = small
    changed = shutil.copytree(base, tmp_path / "changed-base")
    if edit == "tokenizer":
        # Same weights, one merge fewer: texts would be split into other tokens.
        tokenizer = json.loads((changed / "tokenizer.json").read_text())
        tokenizer["model"]["merges"] = tokenizer["model"]["merges"][:-1]
        (changed / "tokenizer.json").write_text(json.dumps(tokenizer))
    else:
        config = json.loads((changed / "config.json").read_text())
        config["layer_norm_epsilon"] = 1e-3
        (changed / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="different tokenizer or model config"):
        GPT2SequenceClassifier.from_pretrained(ref, base=changed)


def test_full_tuning_has_no_save_by_reference(base, demo_data, tmp_path):
    clf = GPT2SequenceClassifier(str(base), max_epochs=1, max_length=8, random_state=0)
    clf.fit(*demo_data)
    with pytest.raises(ValueError, match="trains every weight"):
        clf.save_pretrained(tmp_path / "x", base="reference")
    with pytest.raises(ValueError, match="base must be"):
        clf.save_pretrained(tmp_path / "x", base="weights")


def test_a_full_save_over_a_reference_save_leaves_no_stale_files(small, tmp_path):
    clf, _, ref = small
    target = shutil.copytree(ref, tmp_path / "reuse")
    clf.save_pretrained(target)
    assert not (target / "trained.safetensors").exists()
    loaded = GPT2SequenceClassifier.from_pretrained(target)
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), clf.predict_proba(PROBE))


def test_class_weight_with_non_string_labels_is_refused_by_the_json_format(base, tmp_path):
    X = ["good", "bad", "fine", "awful"]
    clf = GPT2SequenceClassifier(
        str(base), max_epochs=1, max_length=8, random_state=0, class_weight={1: 2.0}
    ).fit(X, [1, 0, 1, 0])
    with pytest.raises(TypeError, match=r"class_weight.*joblib"):
        clf.save_pretrained(tmp_path / "ints")
    loaded = joblib.load(joblib.dump(clf, tmp_path / "ints.joblib")[0])
    assert loaded.class_weight == {1: 2.0}


def test_base_is_only_for_saves_by_reference(small):
    _, full, _ = small
    with pytest.raises(ValueError, match="base= only tells a save by reference"):
        GPT2SequenceClassifier.from_pretrained(full, base=full)
