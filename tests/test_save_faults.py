"""Fault injection: a save that fails or is killed never loses the previous model; a changed
byte never loads a different model; a failed partial_fit leaves the model as it was."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from skorch.callbacks import Callback

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.persistence.format import MANIFEST
from sklearn_gpt2.persistence.manifest import file_digest, manifest_digest
from sklearn_gpt2.persistence.state_digest import seal

TEXTS = ["a wonderful, moving film", "dull and far too long", ""]


@pytest.fixture(scope="module")
def fitted(make_classifier, tiny_gpt2, demo_data):
    return make_classifier(tiny_gpt2, max_epochs=1).fit(*demo_data)


@pytest.fixture
def saved(fitted, tmp_path):
    """A fitted classifier saved twice over: the target directory holds a good save."""
    return fitted.save_pretrained(tmp_path / "model"), fitted.predict_proba(TEXTS)


def run_child(code: str, tmp_path: Path, fitted) -> subprocess.CompletedProcess:
    joblib.dump(fitted, tmp_path / "clf.joblib")
    script = "import joblib, torch; torch.set_num_threads(1)\n"
    script += f"clf = joblib.load({str(tmp_path / 'clf.joblib')!r})\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def assert_intact(directory: Path, expected: np.ndarray) -> None:
    loaded = GPT2SequenceClassifier.from_pretrained(directory)
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), expected)
    leftovers = [p.name for p in directory.parent.iterdir() if p.name.startswith(".model.")]
    assert not leftovers or all(".saving-" in name for name in leftovers)


def test_disk_full_during_save_pretrained_keeps_the_previous_save(saved, fitted, tmp_path):
    directory, expected = saved
    result = run_child(
        f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # report EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        try:
            clf.save_pretrained({str(directory)!r})
        except OSError as error:
            print(error)
        """,
        tmp_path,
        fitted,
    )
    assert result.returncode == 0, result.stderr
    assert "failed" in result.stdout and "previous model" in result.stdout
    assert "is intact" in result.stdout
    assert_intact(directory, expected)
    assert not [p for p in tmp_path.iterdir() if ".saving-" in p.name], "staging removed"


def test_a_process_killed_in_the_middle_of_a_save_leaves_the_previous_save(saved, fitted, tmp_path):
    directory, expected = saved
    result = run_child(
        f"""
        import os, signal
        from transformers import PreTrainedTokenizerBase
        def die(*args, **kwargs):  # the weights are written; the tokenizer never is
            os.kill(os.getpid(), signal.SIGKILL)
        PreTrainedTokenizerBase.save_pretrained = die
        clf.save_pretrained({str(directory)!r})
        """,
        tmp_path,
        fitted,
    )
    assert result.returncode == -9
    assert_intact(directory, expected)


def test_save_into_a_file_path_is_refused_before_writing(fitted, tmp_path):
    path = tmp_path / "model"
    path.write_text("not a directory")
    with pytest.raises(NotADirectoryError, match="it is a file"):
        fitted.save_pretrained(path)
    assert path.read_text() == "not a directory"


def test_files_the_package_did_not_write_are_ignored_and_kept(saved, fitted):
    directory, expected = saved
    (directory / "train.log").write_text("epoch 1\n")
    # Tokenizer files the manifest does not list must not change the vocabulary or pad token.
    (directory / "added_tokens.json").write_text(json.dumps({"<new>": 400}))
    (directory / "special_tokens_map.json").write_text(json.dumps({"pad_token": "the"}))
    loaded = GPT2SequenceClassifier.from_pretrained(directory)
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), expected)
    assert loaded.tokenizer_.pad_token == fitted.tokenizer_.pad_token
    (directory / "train.log").write_text("epoch 1\nepoch 2\n")  # a growing log
    GPT2SequenceClassifier.from_pretrained(directory)
    fitted.save_pretrained(directory)
    assert (directory / "train.log").read_text() == "epoch 1\nepoch 2\n"


def test_non_finite_weights_are_refused(saved):
    directory, _ = saved
    weights = load_file(directory / "model.safetensors")
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name][0] = float("nan")
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"]["model.safetensors"] = file_digest(directory / "model.safetensors")
    manifest["digest"] = manifest_digest(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="non-finite"):
        GPT2SequenceClassifier.from_pretrained(directory)


def test_every_flipped_byte_fails_with_the_files_name_or_loads_the_same_model(saved, tmp_path):
    directory, expected = saved
    rng = np.random.default_rng(0)
    outcomes = {"refused": 0, "identical": 0}
    for path in sorted(directory.iterdir()):
        original = path.read_bytes()
        for position in rng.choice(len(original), size=min(6, len(original)), replace=False):
            flipped = bytearray(original)
            flipped[position] ^= 1 << int(rng.integers(8))
            path.write_bytes(bytes(flipped))
            try:
                loaded = GPT2SequenceClassifier.from_pretrained(directory)
            except (ValueError, OSError) as error:
                assert path.name in str(error), f"{path.name}@{position}: {error}"
                outcomes["refused"] += 1
            else:
                np.testing.assert_array_equal(loaded.predict_proba(TEXTS), expected)
                outcomes["identical"] += 1
        path.write_bytes(original)
    assert outcomes["refused"] > 0
    assert_intact(directory, expected)


def test_a_pickle_state_with_invalid_parameters_is_refused(fitted):
    state = fitted.__getstate__()
    state["params"]["lr"] = -1.0
    seal(state)  # crafted on purpose, with a digest that matches
    with pytest.raises(ValueError, match=r"invalid parameter.*'lr'"):
        GPT2SequenceClassifier().__setstate__(state)
    state = fitted.__getstate__()
    state["params"]["evil"] = 1
    seal(state)
    with pytest.raises(ValueError, match="unknown parameters \\['evil'\\]"):
        GPT2SequenceClassifier().__setstate__(state)


# ---------------------------------------------------------------------------- partial_fit
class _Sabotage(Callback):
    """Breaks training at the second batch, in one of several ways."""

    def __init__(self, how):
        self.how = how

    def initialize(self):
        self.batches_ = 0
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        self.batches_ += 1
        if self.batches_ < 2:
            return
        if self.how == "nan":
            with torch.no_grad():
                net.module_.model.score.weight.fill_(float("nan"))
        elif self.how == "interrupt":
            raise KeyboardInterrupt
        elif self.how == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        else:
            raise RuntimeError("a bug in a callback")


def state_of(clf):
    return (
        {k: v.clone() for k, v in clf.module_.state_dict().items()},
        len(clf.history_),
        {
            k: {n: t.clone() for n, t in s.items() if isinstance(t, torch.Tensor)}
            for k, s in clf._net.optimizer_.state_dict()["state"].items()
        },
    )


def assert_unchanged(clf, before):
    weights, n_epochs, optimizer = state_of(clf)
    assert n_epochs == before[1]
    for name, tensor in before[0].items():
        torch.testing.assert_close(weights[name], tensor, rtol=0, atol=0)
    assert optimizer.keys() == before[2].keys()
    for key, tensors in before[2].items():
        for name, tensor in tensors.items():
            torch.testing.assert_close(optimizer[key][name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("how", "error", "message"),
    [
        ("nan", FloatingPointError, "training loss became nan"),
        ("interrupt", KeyboardInterrupt, "interrupted"),
        ("oom", torch.OutOfMemoryError, "smaller batch_size"),
        ("bug", RuntimeError, "a bug in a callback"),
    ],
)
def test_a_failed_partial_fit_restores_the_model(
    make_classifier, tiny_gpt2, demo_data, how, error, message
):
    X, y = demo_data
    clf = make_classifier(tiny_gpt2, max_epochs=1).fit(X, y)
    clf.partial_fit(X, y)  # the optimizer has state now
    expected = clf.predict_proba(TEXTS)
    before = state_of(clf)
    clf.set_params(callbacks=[("sabotage", _Sabotage(how))])
    with pytest.raises(error, match=message) as info:
        clf.partial_fit(X, y)
    if how != "oom":
        assert "as it was before the call" in str(info.value)
    assert_unchanged(clf, before)
    np.testing.assert_array_equal(clf.predict_proba(TEXTS), expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_length": 10_000}, "exceeds the model's context"),
        ({"validation_fraction": 0.5}, "class 'negative' has 1\\. Add texts"),
        ({"device": "tpu9"}, "'device' parameter"),
    ],
)
def test_partial_fit_checks_before_anything_changes(
    make_classifier, tiny_gpt2, demo_data, change, message
):
    X, y = demo_data
    clf = make_classifier(tiny_gpt2, max_epochs=1).fit(X, y)
    before = state_of(clf)
    clf.set_params(**change)
    with pytest.raises(ValueError, match=message):
        clf.partial_fit(X[:3], y[:3])
    assert_unchanged(clf, before)


def test_partial_fit_follows_set_params(make_classifier, tiny_gpt2, demo_data):
    X, y = demo_data
    clf = make_classifier(tiny_gpt2, max_epochs=1, lr=1e-3).fit(X, y)
    clf.set_params(lr=5e-2, weight_decay=0.3).partial_fit(X, y)
    decay, no_decay = clf._net.optimizer_.param_groups
    assert decay["initial_lr"] == no_decay["initial_lr"] == 5e-2
    assert decay["weight_decay"] == 0.3 and no_decay["weight_decay"] == 0.0
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['foo'\\]"):
        clf.partial_fit(X, y, foo=1)


def test_folders_in_the_target_survive_a_resave(saved, fitted):
    directory, expected = saved
    (directory / "notes").mkdir()
    (directory / "notes" / "run.txt").write_text("kept")
    fitted.save_pretrained(directory)
    assert (directory / "notes" / "run.txt").read_text() == "kept"
    assert_intact(directory, expected)


def test_parameters_that_define_the_fit_cannot_change_before_partial_fit_or_save(
    make_classifier, tiny_gpt2, demo_data, tmp_path
):
    X, y = demo_data
    clf = make_classifier(tiny_gpt2, tuning="lora", lora_rank=4).fit(X, y)
    clf.set_params(lora_rank=8)
    with pytest.raises(ValueError, match="fitted with lora_rank=4 but its parameters are now"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="lora_rank=8"):
        clf.save_pretrained(tmp_path / "model")
    clf.set_params(lora_rank=4).partial_fit(X, y)  # set back: both work again
    GPT2SequenceClassifier.from_pretrained(clf.save_pretrained(tmp_path / "model"))


def test_partial_fit_rebuilds_callbacks_for_a_new_warmup_ratio(
    make_classifier, tiny_gpt2, demo_data
):
    X, y = demo_data
    clf = make_classifier(tiny_gpt2, warmup_ratio=0.0).fit(X, y)
    clf.set_params(warmup_ratio=0.5).partial_fit(X, y)
    assert dict(clf._net.callbacks_)["lr_schedule"].warmup_ratio == 0.5


def test_a_first_partial_fit_missing_a_named_class_is_refused(
    make_classifier, tiny_gpt2, demo_data
):
    X, y = demo_data
    positives = [text for text, label in zip(X, y, strict=True) if label == "positive"][:4]
    with pytest.raises(ValueError, match="no text of the classes \\['negative'\\]"):
        make_classifier(tiny_gpt2).partial_fit(
            positives, ["positive"] * 4, classes=["negative", "positive"]
        )
