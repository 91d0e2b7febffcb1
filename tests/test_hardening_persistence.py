"""Saving and loading at the edges: the fitted base, damaged files, routing, no disk to write.

A save never overwrites the checkpoint a model was fitted from, and a save by reference names
that checkpoint (not today's ``model_name_or_path``); a damaged pickle or checkpoint is refused
with the file and the fix; a pickle keeps its metadata-routing requests and loads where no
file can be written.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn import config_context
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from transformers import AutoTokenizer

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier
from sklearn_gpt2.datasets import build_tiny_gpt2
from sklearn_gpt2.persistence.format import MANIFEST
from sklearn_gpt2.persistence.pickle_codec import _tokenizer_files
from sklearn_gpt2.persistence.tokenizer_memory import tokenizer_from_memory

FAST = {"max_epochs": 1, "batch_size": 8, "lr": 1e-3, "precision": "float32", "random_state": 0}
PROBE = ["a wonderful film", "dull and far too long", "", "it is bad <|endoftext|>", "é 😀 \x00"]


def sequence(path, **params):
    return GPT2SequenceClassifier(os.fspath(path), **{**FAST, **params})


def tree_digest(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def checkpoint(tiny_gpt2, tmp_path):
    """A private copy of the tiny checkpoint, inside a parent folder of its own."""
    return Path(shutil.copytree(tiny_gpt2, tmp_path / "models" / "base"))


# ---------------------------------------------------------------------------- the fitted base
@pytest.mark.parametrize("base", ["include", "reference"])
def test_saving_into_the_checkpoint_it_was_fitted_from_is_refused(
    checkpoint, demo_data, base, monkeypatch
):
    before = tree_digest(checkpoint.parent)
    clf = sequence(checkpoint, tuning="head").fit(*demo_data)
    monkeypatch.chdir(checkpoint.parent)
    for target in [checkpoint, Path("base"), Path("base/../base"), checkpoint.parent]:
        with pytest.raises(ValueError, match=r"would overwrite the checkpoint .*fitted from"):
            clf.save_pretrained(target, base=base)
    clf.set_params(model_name_or_path=str(checkpoint.parent))  # the fitted base still counts
    with pytest.raises(ValueError, match="would overwrite the checkpoint"):
        clf.save_pretrained(checkpoint, base=base)
    assert tree_digest(checkpoint.parent) == before
    # Anywhere else is fine, the checkpoint's own subfolders included.
    clf.set_params(model_name_or_path=str(checkpoint))
    loaded = type(clf).from_pretrained(clf.save_pretrained(checkpoint / "fine-tuned", base=base))
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), clf.predict_proba(PROBE))


def test_a_symlink_to_the_checkpoint_is_refused(checkpoint, demo_data, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(checkpoint, target_is_directory=True)
    clf = sequence(checkpoint).fit(*demo_data)
    with pytest.raises(ValueError, match="would overwrite the checkpoint"):
        clf.save_pretrained(link)


@pytest.fixture
def other_checkpoint(tmp_path):
    return build_tiny_gpt2(tmp_path / "other", seed=1)


@pytest.mark.parametrize("tuning", ["head", "lora"])
def test_a_save_by_reference_names_the_base_it_was_fitted_on(
    checkpoint, other_checkpoint, demo_data, tmp_path, tuning
):
    clf = sequence(checkpoint, tuning=tuning).fit(*demo_data)
    expected = clf.predict_proba(PROBE)
    clf.set_params(model_name_or_path=str(other_checkpoint))
    saved = clf.save_pretrained(tmp_path / "ref", base="reference")
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["base"]["model_name_or_path"] == str(checkpoint.resolve())
    loaded = GPT2SequenceClassifier.from_pretrained(saved)
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), expected)


def test_a_relative_base_is_named_by_absolute_path(checkpoint, demo_data, tmp_path, monkeypatch):
    monkeypatch.chdir(checkpoint.parent)
    clf = sequence("base", tuning="head").fit(*demo_data)
    expected = clf.predict_proba(PROBE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "base").mkdir()  # a different folder by the same relative name
    monkeypatch.chdir(elsewhere)
    saved = clf.save_pretrained(tmp_path / "ref", base="reference")
    monkeypatch.chdir(tmp_path)
    loaded = GPT2SequenceClassifier.from_pretrained(saved)
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), expected)


@pytest.mark.parametrize("route", ["pickle", "directory", "reference"])
def test_the_fitted_base_survives_saving_and_loading(
    checkpoint, other_checkpoint, demo_data, tmp_path, route
):
    clf = sequence(checkpoint, tuning="head").fit(*demo_data)
    expected = clf.predict_proba(PROBE)
    clf.set_params(model_name_or_path=str(other_checkpoint))
    if route == "pickle":
        loaded = pickle.loads(pickle.dumps(clf))
    else:
        base = "include" if route == "directory" else "reference"
        saved = clf.save_pretrained(tmp_path / "first", base=base)
        loaded = GPT2SequenceClassifier.from_pretrained(saved)
    loaded.set_params(model_name_or_path=str(other_checkpoint))
    with pytest.raises(ValueError, match="would overwrite the checkpoint"):
        loaded.save_pretrained(checkpoint)
    again = loaded.save_pretrained(tmp_path / "again", base="reference")
    manifest = json.loads((again / MANIFEST).read_text())
    assert manifest["base"]["model_name_or_path"] == str(checkpoint.resolve())
    np.testing.assert_array_equal(
        GPT2SequenceClassifier.from_pretrained(again).predict_proba(PROBE), expected
    )


# ---------------------------------------------------------------------------- corrupt checkpoints
def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"\x07" * 64)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
@pytest.mark.parametrize("cls", [GPT2SequenceClassifier, GPT2PromptClassifier])
def test_a_corrupt_checkpoint_names_its_weights_file(checkpoint, demo_data, how, cls):
    _damage(checkpoint / "model.safetensors", how)
    clf = cls(str(checkpoint), precision="float32")
    with pytest.raises(ValueError, match=r"model\.safetensors is truncated or corrupt.*again"):
        clf.fit(*demo_data)


def test_a_corrupt_reference_base_names_its_weights_file(checkpoint, demo_data, tmp_path):
    clf = sequence(checkpoint, tuning="head").fit(*demo_data)
    saved = clf.save_pretrained(tmp_path / "ref", base="reference")
    _damage(checkpoint / "model.safetensors", "truncated")
    with pytest.raises(ValueError, match=r"needs its base checkpoint.*model\.safetensors is trunc"):
        GPT2SequenceClassifier.from_pretrained(saved)


# ---------------------------------------------------------------------------- pickle integrity
@pytest.fixture(scope="module")
def fitted(tiny_gpt2, demo_data):
    return sequence(tiny_gpt2).fit(*demo_data)


@pytest.fixture(scope="module")
def fitted_prompt(tiny_gpt2, demo_data):
    return GPT2PromptClassifier(str(tiny_gpt2), template="{text} it was", **FAST).fit(*demo_data)


@pytest.mark.parametrize("which", ["fitted", "fitted_prompt"])
def test_no_byte_flip_in_a_joblib_file_loads_another_model(which, request, tmp_path):
    clf = request.getfixturevalue(which)
    path = tmp_path / "clf.joblib"
    joblib.dump(clf, path)
    original = path.read_bytes()
    expected = clf.predict_proba(PROBE)
    rng = np.random.default_rng(0)
    refused = identical = 0
    for position in rng.integers(0, len(original), 30):
        damaged = bytearray(original)
        damaged[position] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(damaged))
        try:
            loaded = joblib.load(path)
        except Exception as error:  # a damaged pickle stream fails in pickle itself
            refused += 1
            if "SHA-256 digest" in str(error):
                assert "save_pretrained" in str(error) and "Save the classifier again" in str(error)
            continue
        np.testing.assert_array_equal(loaded.predict_proba(PROBE), expected)
        identical += 1
    assert refused + identical == 30 and refused > 0


def test_a_damaged_pickle_is_refused_with_the_fix(fitted):
    state = fitted.__getstate__()
    weights = state["fitted"]["weights"]
    name = sorted(weights)[0]
    weights[name] = weights[name].copy()
    weights[name].flat[0] += 1e-3
    with pytest.raises(ValueError, match=r"SHA-256 digest.*Save the classifier again.*directory"):
        GPT2SequenceClassifier.__new__(GPT2SequenceClassifier).__setstate__(state)
    for field in ("sha256", "sealed"):  # a damaged field name cannot pass as an old pickle
        state = fitted.__getstate__()
        del state[field]
        with pytest.raises(ValueError, match="SHA-256 digest"):
            GPT2SequenceClassifier.__new__(GPT2SequenceClassifier).__setstate__(state)


def test_a_pickle_without_a_digest_loads_as_before(fitted):
    state = fitted.__getstate__()
    del state["sha256"], state["sealed"]
    clone = GPT2SequenceClassifier.__new__(GPT2SequenceClassifier)
    clone.__setstate__(state)
    np.testing.assert_array_equal(clone.predict_proba(PROBE), fitted.predict_proba(PROBE))


def test_skops_files_are_sealed_too(fitted, tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "clf.skops"
    sio.dump(fitted, path)
    loaded = sio.load(path, trusted=["sklearn_gpt2._classifier.GPT2SequenceClassifier"])
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), fitted.predict_proba(PROBE))


# ---------------------------------------------------------------------------- metadata routing
def test_routing_requests_survive_pickling(tiny_gpt2, demo_data):
    with config_context(enable_metadata_routing=True):
        for clf in [sequence(tiny_gpt2), sequence(tiny_gpt2).fit(*demo_data)]:
            clf.set_fit_request(sample_weight=True).set_score_request(sample_weight="w")
            loaded = pickle.loads(pickle.dumps(clf))
            routing = str(loaded.get_metadata_routing())
            assert routing == str(clf.get_metadata_routing())
            assert "'fit': {'sample_weight': True}" in routing
            assert "'score': {'sample_weight': 'w'}" in routing


def test_grid_search_in_processes_routes_sample_weight(tiny_gpt2, demo_data):
    X, y = demo_data
    weights = np.linspace(0.5, 2.0, len(X))
    with config_context(enable_metadata_routing=True):
        clf = sequence(tiny_gpt2).set_fit_request(sample_weight=True)
        pipe = Pipeline([("clf", clf.set_score_request(sample_weight=True))])
        search = GridSearchCV(pipe, {"clf__lr": [1e-3, 2e-3]}, cv=2, n_jobs=2, error_score="raise")
        search.fit(np.asarray(X, dtype=object), y, sample_weight=weights)
        direct = sequence(tiny_gpt2, lr=search.best_params_["clf__lr"]).fit(
            X, y, sample_weight=weights
        )
    np.testing.assert_allclose(
        search.best_estimator_.predict_proba(PROBE), direct.predict_proba(PROBE), atol=1e-6
    )


# ---------------------------------------------------------------------------- nothing to write
def test_the_tokenizer_is_rebuilt_in_memory_with_the_same_tokens(fitted, tmp_path):
    files = _tokenizer_files(fitted.tokenizer_)
    rebuilt = tokenizer_from_memory(files)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    from_disk = AutoTokenizer.from_pretrained(tmp_path)
    assert type(rebuilt) is type(from_disk)
    texts = [*PROBE, " leading  spaces ", "x" * 300]
    assert rebuilt(texts)["input_ids"] == from_disk(texts)["input_ids"]
    assert rebuilt.special_tokens_map == from_disk.special_tokens_map
    assert rebuilt.backend_tokenizer.to_str() == from_disk.backend_tokenizer.to_str()


def test_real_gpt2_and_bert_tokenizers_rebuild_identically(tmp_path):
    from transformers import BertTokenizerFast

    sources = []
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "gpt2_tokenizer"
    if (real / "vocab.json").is_file():
        sources.append(AutoTokenizer.from_pretrained(real))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"]))
    bert = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    bert.add_special_tokens({"additional_special_tokens": ["[NEW]"]})
    sources.append(bert)
    for source in sources:
        files = _tokenizer_files(source)
        rebuilt = tokenizer_from_memory(files)
        scratch = tmp_path / type(source).__name__
        scratch.mkdir()
        for name, content in files.items():
            (scratch / name).write_bytes(content)
        from_disk = AutoTokenizer.from_pretrained(scratch)
        texts = [*PROBE, "A FILM [NEW] [CLS] film", "Hello  world"]
        assert rebuilt(texts)["input_ids"] == from_disk(texts)["input_ids"]
        assert rebuilt.special_tokens_map == from_disk.special_tokens_map


@pytest.mark.parametrize("which", ["fitted", "fitted_prompt"])
def test_joblib_load_writes_no_file(which, request, tmp_path):
    clf = request.getfixturevalue(which)
    path = tmp_path / "clf.joblib"
    joblib.dump(clf, path)
    read_only = tmp_path / "read-only-tmp"
    read_only.mkdir()
    read_only.chmod(0o555)
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        import joblib
        # No file can grow past 0 bytes: any write (a temporary folder too) fails.
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        clf = joblib.load({str(path)!r})
        json.dump(clf.predict_proba({PROBE!r}).tolist(), sys.stdout)
        """
    )
    env = {**os.environ, "TMPDIR": str(read_only), "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.array(json.loads(result.stdout)), clf.predict_proba(PROBE))
