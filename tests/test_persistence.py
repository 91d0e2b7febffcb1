"""Saving and loading: pickle/joblib, the safe directory format, skops; tampered files."""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.exceptions import NotFittedError

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.persistence.format import MANIFEST
from sklearn_gpt2.persistence.manifest import file_digest, manifest_digest
from sklearn_gpt2.persistence.state_digest import seal

_DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_DATA = Path(os.environ.get("SKLEARN_GPT2_SHARED_DATA", _DEFAULT_SHARED))
TYPE_NAME = "sklearn_gpt2._classifier.GPT2SequenceClassifier"
PROBE = ["a wonderful film", "dull and far too long", "", "it is bad <|endoftext|>", "é 😀 \x00"]


def _fit(checkpoint, texts, labels, **params):
    params = {"max_epochs": 1, "precision": "float32", "random_state": 0, **params}
    return GPT2SequenceClassifier(str(checkpoint), **params).fit(texts, labels)


@pytest.fixture(scope="module")
def fitted(tiny_gpt2, demo_data):
    return _fit(tiny_gpt2, *demo_data)


@pytest.fixture(scope="module")
def saved_dir(fitted, tmp_path_factory):
    return fitted.save_pretrained(tmp_path_factory.mktemp("saved") / "clf")


def _copy(directory: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(directory, target)
    return target


def _rehash(directory: Path, manifest: dict | None = None) -> None:
    """Update the manifest's checksums and its own digest, as someone tampering on purpose would."""
    if manifest is None:
        manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"] = {
        name: file_digest(directory / name)
        for name in manifest["files"]
        if (directory / name).exists()
    }
    manifest["digest"] = manifest_digest(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def _in_fresh_process(code: str, tmp_path: Path) -> np.ndarray:
    """Run ``code`` (which saves ``proba``) in a new interpreter with the network blocked."""
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import socket
            def _no_network(*args, **kwargs):
                raise RuntimeError("network access attempted")
            socket.socket.connect = _no_network
            socket.create_connection = _no_network
            import numpy as np
            """
        )
        + textwrap.dedent(code)
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(tmp_path / "proba.npy")


def _builtins_and_arrays_only(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _builtins_and_arrays_only(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_builtins_and_arrays_only(v) for v in value)
    return value is None or isinstance(value, (str, bytes, bool, int, float, np.ndarray))


# ---------------------------------------------------------------------------- pickle / joblib
def test_pickle_round_trip_is_exact(fitted):
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), fitted.predict_proba(PROBE))
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    assert loaded.get_params() == fitted.get_params()
    assert len(loaded.history_) == len(fitted.history_)


@pytest.mark.slow
def test_joblib_in_a_fresh_process_without_checkpoint_or_network(tiny_gpt2, demo_data, tmp_path):
    checkpoint = shutil.copytree(tiny_gpt2, tmp_path / "checkpoint")
    clf = _fit(checkpoint, *demo_data)
    joblib.dump(clf, tmp_path / "clf.joblib")
    shutil.rmtree(checkpoint)  # the file must be self-contained
    proba = _in_fresh_process(
        f"""
        import joblib
        clf = joblib.load({str(tmp_path / "clf.joblib")!r})
        np.save({str(tmp_path / "proba.npy")!r}, clf.predict_proba({PROBE!r}))
        """,
        tmp_path,
    )
    np.testing.assert_array_equal(proba, clf.predict_proba(PROBE))


def test_pickle_holds_weights_once_and_no_optimizer(fitted, tmp_path):
    state = fitted.__getstate__()
    assert _builtins_and_arrays_only(state)
    weights = state["fitted"]["weights"]
    assert all(isinstance(array, np.ndarray) for array in weights.values())
    weight_bytes = sum(array.nbytes for array in weights.values())
    n_params = sum(t.numel() for t in fitted.module_.model.state_dict().values())
    assert weight_bytes == 4 * n_params
    tokenizer_bytes = sum(len(b) for b in state["fitted"]["tokenizer_files"].values())
    joblib.dump(fitted, tmp_path / "clf.joblib")
    size = (tmp_path / "clf.joblib").stat().st_size
    # Weights plus tokenizer files plus a few kB of params, config and history.
    assert weight_bytes + tokenizer_bytes < size < weight_bytes + tokenizer_bytes + 32_000
    loaded = joblib.load(tmp_path / "clf.joblib")
    assert not hasattr(loaded._net, "optimizer_") and not hasattr(loaded._net, "grad_scaler_")


def test_unpickled_classifier_refits_from_the_checkpoint(fitted, demo_data):
    loaded = pickle.loads(pickle.dumps(fitted))
    assert loaded.fit(*demo_data) is loaded
    assert hasattr(loaded._net, "optimizer_")
    # Same seed, same data: refitting reproduces the original fit.
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), fitted.predict_proba(PROBE))


def test_unfitted_round_trip(tmp_path):
    clf = GPT2SequenceClassifier(tmp_path / "checkpoint", device=torch.device("cpu"), lr=1e-4)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.get_params() == clf.get_params()
    assert isinstance(loaded.model_name_or_path, Path) and isinstance(loaded.device, torch.device)
    sio = pytest.importorskip("skops.io")
    sio.dump(clf, tmp_path / "clf.skops")
    assert sio.get_untrusted_types(file=tmp_path / "clf.skops") == [TYPE_NAME]
    with pytest.raises(NotFittedError):
        loaded.predict(["text"])


def test_version_mismatch_warns(fitted):
    state = fitted.__getstate__()
    state["versions"]["transformers"] = "1.0.0"
    seal(state)  # as that version would have written it
    clone = GPT2SequenceClassifier.__new__(GPT2SequenceClassifier)
    with pytest.warns(UserWarning, match=r"transformers 1\.0\.0"):
        clone.__setstate__(state)
    np.testing.assert_array_equal(clone.predict_proba(PROBE), fitted.predict_proba(PROBE))


def test_same_versions_do_not_warn(fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(fitted))


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_gpu_pickle_loads_on_cpu(fitted):
    state = fitted.__getstate__()
    state["params"].update(device="cuda:0", precision="float16")
    seal(state)  # as a machine with a GPU would have written it
    clone = GPT2SequenceClassifier.__new__(GPT2SequenceClassifier)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        clone.__setstate__(state)
    assert clone.runtime_.device == torch.device("cpu")
    assert clone.get_params()["device"] == "cpu" and clone.precision == "float32"
    np.testing.assert_array_equal(clone.predict_proba(PROBE), fitted.predict_proba(PROBE))


def test_foreign_state_is_rejected():
    clone = GPT2SequenceClassifier.__new__(GPT2SequenceClassifier)
    with pytest.raises(ValueError, match="does not hold a GPT2SequenceClassifier state"):
        clone.__setstate__({"module_": "skorch state"})


@pytest.mark.parametrize("labels", ["str", "int", "bool"])
def test_label_types_round_trip(tiny_gpt2, demo_data, labels, tmp_path):
    texts, names = demo_data[0][:16], demo_data[1][:16]
    y = {
        "str": names,
        "int": [7 if name == "positive" else -3 for name in names],
        "bool": [name == "positive" for name in names],
    }[labels]
    clf = _fit(tiny_gpt2, texts, y, batch_size=8)
    for loaded in (
        pickle.loads(pickle.dumps(clf)),
        GPT2SequenceClassifier.from_pretrained(clf.save_pretrained(tmp_path / "clf")),
    ):
        np.testing.assert_array_equal(loaded.classes_, clf.classes_)
        assert loaded.classes_.dtype == clf.classes_.dtype
        assert type(loaded.predict(texts[:1])[0]) is type(clf.predict(texts[:1])[0])
        np.testing.assert_array_equal(loaded.predict_proba(PROBE), clf.predict_proba(PROBE))


# ---------------------------------------------------------------------------- safe directory
def test_save_pretrained_round_trip_is_exact(fitted, saved_dir):
    names = {path.name for path in saved_dir.iterdir()}
    assert {"model.safetensors", "config.json", MANIFEST, "tokenizer_config.json"} <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl", ".pth")) for name in names)
    loaded = GPT2SequenceClassifier.from_pretrained(saved_dir)
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), fitted.predict_proba(PROBE))
    params = fitted.get_params()
    assert loaded.get_params() == params
    manifest = json.loads((saved_dir / MANIFEST).read_text())
    assert manifest["classes"] == {"dtype": "object", "values": ["negative", "positive"]}
    assert set(manifest["versions"]) >= {"sklearn_gpt2", "torch", "transformers"}


def test_save_pretrained_needs_a_fitted_classifier(tmp_path):
    with pytest.raises(NotFittedError):
        GPT2SequenceClassifier().save_pretrained(tmp_path / "clf")


def test_callbacks_are_not_saved(tiny_gpt2, demo_data, tmp_path):
    from skorch.callbacks import EpochTimer

    clf = _fit(tiny_gpt2, demo_data[0][:8], demo_data[1][:8], callbacks=[("t", EpochTimer())])
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        clf.save_pretrained(tmp_path / "clf")
    assert GPT2SequenceClassifier.from_pretrained(tmp_path / "clf").callbacks is None


def test_directory_opens_with_plain_transformers(fitted, saved_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(saved_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(saved_dir)
    assert [model.config.id2label[i] for i in range(len(fitted.classes_))] == list(fitted.classes_)
    # One unpadded text that does not end in EOS: plain transformers agrees with us.
    text = "a wonderful film"
    with torch.no_grad():
        logits = model(**tokenizer([text], return_tensors="pt")).logits
    expected = torch.softmax(logits.double(), -1).numpy()
    np.testing.assert_allclose(fitted.predict_proba([text]), expected, atol=1e-6)


def test_loading_never_unpickles(saved_dir, monkeypatch, fitted):
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = GPT2SequenceClassifier.from_pretrained(saved_dir)
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), fitted.predict_proba(PROBE))


@pytest.mark.slow
def test_from_pretrained_in_a_fresh_process(fitted, saved_dir, tmp_path):
    proba = _in_fresh_process(
        f"""
        from sklearn_gpt2 import GPT2SequenceClassifier
        clf = GPT2SequenceClassifier.from_pretrained({str(saved_dir)!r})
        np.save({str(tmp_path / "proba.npy")!r}, clf.predict_proba({PROBE!r}))
        """,
        tmp_path,
    )
    np.testing.assert_array_equal(proba, fitted.predict_proba(PROBE))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _reshape_score(path: Path) -> None:
    tensors = load_file(path)
    tensors["score.weight"] = torch.zeros(3, tensors["score.weight"].shape[1])
    save_file(tensors, path, metadata={"format": "pt"})


def _drop_score(path: Path) -> None:
    tensors = load_file(path)
    del tensors["score.weight"]
    save_file(tensors, path, metadata={"format": "pt"})


TAMPERING = {
    # name: (file, change, error type, message pattern)
    "truncated weights": ("model.safetensors", _truncate, ValueError, "corrupt, incomplete"),
    "flipped weight byte": ("model.safetensors", _flip_last_byte, ValueError, "was modified"),
    "truncated config": ("config.json", _truncate, ValueError, "config.json"),
    "missing weights": ("model.safetensors", Path.unlink, FileNotFoundError, "is missing"),
    "missing tokenizer": ("tokenizer_config.json", Path.unlink, FileNotFoundError, "missing"),
    "missing manifest": (MANIFEST, Path.unlink, FileNotFoundError, "save_pretrained"),
    "truncated manifest": (MANIFEST, _truncate, ValueError, "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_directory_gives_a_clear_error(saved_dir, tmp_path, case):
    name, change, error, pattern = TAMPERING[case]
    directory = _copy(saved_dir, tmp_path)
    change(directory / name)
    with pytest.raises(error, match=pattern) as info:
        GPT2SequenceClassifier.from_pretrained(directory)
    assert name in str(info.value)


def _ask_for_remote_code(path: Path) -> None:
    config = json.loads(path.read_text())
    config.update(
        model_type="evil-gpt2",
        auto_map={"AutoConfig": "evil.Config", "AutoModelForSequenceClassification": "evil.Model"},
    )
    path.write_text(json.dumps(config))
    (path.parent / "evil.py").write_text("raise SystemExit('remote code ran')\n")


TAMPERING_WITH_CHECKSUMS = {
    "remote code": ("config.json", _ask_for_remote_code, "config.json could not be read"),
    "truncated weights": ("model.safetensors", _truncate, "not a readable safetensors"),
    "reshaped tensor": ("model.safetensors", _reshape_score, r"wrong shape: score\.weight"),
    "dropped tensor": ("model.safetensors", _drop_score, r"missing: score\.weight"),
    "truncated config": ("config.json", _truncate, "config.json could not be read"),
    "truncated tokenizer": (
        "tokenizer.json",
        _truncate,
        r"tokenizer files .*tokenizer\.json.* could not be read",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING_WITH_CHECKSUMS))
def test_tampering_that_updates_checksums_still_gives_a_clear_error(saved_dir, tmp_path, case):
    name, change, pattern = TAMPERING_WITH_CHECKSUMS[case]
    directory = _copy(saved_dir, tmp_path)
    change(directory / name)
    _rehash(directory)
    with pytest.raises(ValueError, match=pattern) as info:
        GPT2SequenceClassifier.from_pretrained(directory)
    assert name in str(info.value)


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda m: m.pop("classes"), "'classes' is missing"),
        (lambda m: m["params"].update(evil=1), "unknown parameters"),
        (lambda m: m.update(format_version=99), "upgrade sklearn-gpt2"),
        (lambda m: m.update(format="other"), "not a sklearn-gpt2 manifest"),
        (lambda m: m["params"].update(batch_size="many"), "'params' field .* could not be read"),
        (lambda m: m["classes"].update(values=["a", "b", "c"]), "names 3 classes"),
        (
            lambda m: m["classes"].update(values=[{"x": 1}, 2]),
            "'classes' field .* could not be read",
        ),
        (lambda m: m["classes"].update(dtype="V8"), "'classes' field .* could not be read"),
    ],
)
def test_edited_manifest_gives_a_clear_error(saved_dir, tmp_path, edit, pattern):
    directory = _copy(saved_dir, tmp_path)
    manifest = json.loads((directory / MANIFEST).read_text())
    edit(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))
    # An edit alone breaks the manifest's own digest (unless the field check fires first) ...
    with pytest.raises(ValueError, match=f"{pattern}|modified after saving"):
        GPT2SequenceClassifier.from_pretrained(directory)
    # ... and one that recomputes the digest still meets the check of that field.
    _rehash(directory, manifest)
    with pytest.raises(ValueError, match=pattern):
        GPT2SequenceClassifier.from_pretrained(directory)


def test_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        GPT2SequenceClassifier.from_pretrained(tmp_path / "nothing")


# ---------------------------------------------------------------------------- skops
def test_skops_trusts_only_the_estimator(fitted, tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "clf.skops"
    sio.dump(fitted, path)
    assert sio.get_untrusted_types(file=path) == [TYPE_NAME]
    with zipfile.ZipFile(path) as archive:
        # skops' JSON schema, .npy arrays (loaded with allow_pickle=False) and raw bytes (the
        # tokenizer files): no pickle stream, which would start with the PROTO opcode 0x80.
        names = archive.namelist()
        assert all(n == "schema.json" or n.endswith((".npy", ".bin")) for n in names)
        assert not any(archive.read(n).startswith(b"\x80") for n in names if n.endswith(".bin"))
    loaded = sio.load(path, trusted=[TYPE_NAME])
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), fitted.predict_proba(PROBE))


# ---------------------------------------------------------------------------- size (slow)
@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SKLEARN_GPT2_SLOW"), reason="builds a 124M model; set SKLEARN_GPT2_SLOW=1"
)
def test_joblib_of_a_124m_classifier_is_at_most_1_05x_its_weights(tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    source = SHARED_DATA / "gpt2_tokenizer"
    if not (source / "vocab.json").is_file():
        pytest.skip(f"needs the real GPT-2 tokenizer in {source}")
    checkpoint = tmp_path / "gpt2-124m"
    AutoTokenizer.from_pretrained(source).save_pretrained(checkpoint)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).save_pretrained(checkpoint)
    texts, labels = ["good", "bad", "fine", "awful"], [1, 0, 1, 0]
    clf = _fit(checkpoint, texts, labels, max_length=8, batch_size=4)
    weight_bytes = 4 * sum(t.numel() for t in clf.module_.model.state_dict().values())
    started = time.perf_counter()
    joblib.dump(clf, tmp_path / "clf.joblib")
    dumped = time.perf_counter()
    loaded = joblib.load(tmp_path / "clf.joblib")
    load_seconds = time.perf_counter() - dumped
    ratio = (tmp_path / "clf.joblib").stat().st_size / weight_bytes
    saved = clf.save_pretrained(tmp_path / "clf")
    dir_ratio = sum(p.stat().st_size for p in saved.iterdir()) / weight_bytes
    sio = pytest.importorskip("skops.io")
    sio.dump(clf, tmp_path / "clf.skops")
    skops_ratio = (tmp_path / "clf.skops").stat().st_size / weight_bytes
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(
        f"\n124M: weights {weight_bytes / 1e6:.1f} MB; joblib {ratio:.4f}x (dump "
        f"{dumped - started:.1f} s, load {load_seconds:.1f} s); save_pretrained {dir_ratio:.4f}x; "
        f"skops {skops_ratio:.4f}x; peak RSS {peak_gb:.1f} GB"
    )
    assert ratio <= 1.05
    np.testing.assert_array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))
