"""The ``precision`` parameter: how "auto" resolves, what each choice runs, what comes out.

This CPU has no native bfloat16, so bfloat16 is emulated and very slow here: the end-to-end
bfloat16 tests use the tiny GPT-2 (2 layers, 32 wide) on a handful of short texts.
"""

import doctest
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_gpt2 import GPT2SequenceClassifier, runtime
from sklearn_gpt2.runtime import autocast, cpu_has_native_bfloat16, resolve_precision

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("processor: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512bw\n", True),
        ("processor: 0\nflags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n", True),
        ("processor: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n", False),
        ("processor: 0\nmodel name: something without a flags line\n", False),
        (None, False),
    ],
    ids=["avx512_bf16", "amx_bf16", "zen3-like", "no-flags-line", "no-proc"],
)
def test_cpu_bf16_detection_reads_cpu_flags(tmp_path, text, expected):
    path = tmp_path / "cpuinfo"
    if text is not None:
        path.write_text(text)
    assert cpu_has_native_bfloat16(path) is expected


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("native", [True, False])
def test_explicit_precision_is_kept_on_cpu(precision, native):
    assert resolve_precision(precision, CPU, native_cpu_bfloat16=native) == precision


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16"])
def test_explicit_precision_is_kept_on_cuda(precision):
    # Resolving needs no GPU: a torch.device("cuda") can be built on any machine.
    assert resolve_precision(precision, CUDA) == precision


@pytest.mark.parametrize(("native", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_auto_on_cpu_follows_native_bf16_support(native, expected):
    assert resolve_precision("auto", CPU, native_cpu_bfloat16=native) == expected


@pytest.mark.parametrize(("supported", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_auto_on_cuda_follows_native_bf16_support(monkeypatch, supported, expected):
    def is_bf16_supported(including_emulation=True):
        # Emulated bfloat16 (pre-Ampere GPUs) must not count as support.
        assert including_emulation is False
        return supported

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert resolve_precision("auto", CUDA) == expected


def test_auto_on_other_devices_is_float32():
    assert resolve_precision("auto", torch.device("meta")) == "float32"


def test_auto_on_this_machine_matches_its_cpu_flags():
    expected = "bfloat16" if cpu_has_native_bfloat16() else "float32"
    assert resolve_precision("auto", CPU) == expected


@pytest.mark.parametrize("device", [CPU, torch.device("meta")])
def test_float16_without_cuda_is_refused_with_a_fix(device):
    with pytest.raises(ValueError, match=r"float16.*needs a CUDA device") as info:
        resolve_precision("float16", device)
    assert "precision='bfloat16' or 'float32'" in str(info.value)


def test_autocast_float32_is_a_no_op():
    layer = torch.nn.Linear(4, 4)
    with autocast("float32", CPU):
        assert not torch.is_autocast_enabled("cpu")
        assert layer(torch.ones(1, 4)).dtype == torch.float32


def test_autocast_bfloat16_runs_matrix_products_in_bfloat16():
    layer = torch.nn.Linear(4, 4)
    with autocast("bfloat16", CPU):
        assert torch.is_autocast_enabled("cpu")
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
    assert layer.weight.dtype == torch.float32  # weights stay float32
    assert not torch.is_autocast_enabled("cpu")


# ---------------------------------------------------------------- through the estimator
TEXTS = [
    "a wonderful film",
    "a dull film",
    "i loved it",
    "i hated it",
    "superb acting",
    "wooden acting",
    "great fun",
    "no fun at all",
    "a lovely little gem",
    "a forgettable mess",
    "highly recommended",
    "not recommended",
    "warm and funny",
    "cold and cynical",
    "an instant classic",
    "an instant flop",
]
LABELS = ["positive", "negative"] * 8


def make(path, **params):
    defaults = dict(
        max_epochs=1, batch_size=8, max_length=16, lr=1e-3, random_state=0, device="cpu"
    )
    defaults.update(params)
    return GPT2SequenceClassifier(path, **defaults)


def test_invalid_precision_string_is_rejected_by_fit(tiny_gpt2):
    clf = make(tiny_gpt2, precision="fp16")
    with pytest.raises(InvalidParameterError, match="'precision' parameter"):
        clf.fit(TEXTS, LABELS)
    assert not hasattr(clf, "classes_")


def test_float16_fit_on_cpu_fails_before_training_and_leaves_nothing(tiny_gpt2):
    clf = make(tiny_gpt2, precision="float16")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        clf.fit(TEXTS, LABELS)
    assert not hasattr(clf, "classes_") and not hasattr(clf, "module_")


def assert_valid_proba(proba, n):
    assert isinstance(proba, np.ndarray)
    assert proba.shape == (n, 2)
    assert np.issubdtype(proba.dtype, np.floating) and proba.dtype != np.float16
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


@pytest.fixture(scope="module")
def fitted_fp32(tiny_gpt2):
    return make(tiny_gpt2, precision="float32").fit(TEXTS, LABELS)


def test_bfloat16_fit_and_predict_end_to_end(tiny_gpt2, fitted_fp32):
    clf = make(tiny_gpt2, precision="bfloat16").fit(TEXTS, LABELS)
    assert not clf._net.grad_scaler_.is_enabled()  # loss scaling is for float16 only
    assert all(p.dtype == torch.float32 for p in clf.module_.parameters())
    np.testing.assert_allclose(
        clf.history_[:, "train_loss"], fitted_fp32.history_[:, "train_loss"], rtol=0.05
    )
    proba = clf.predict_proba(TEXTS)
    assert_valid_proba(proba, len(TEXTS))
    assert set(clf.predict(TEXTS)) <= {"negative", "positive"}
    # Same seed, data and batches: one epoch of bfloat16 training lands near float32 training
    # (the tiny model's outputs are near 0.5, so this bounds the drift, not the accuracy).
    np.testing.assert_allclose(proba, fitted_fp32.predict_proba(TEXTS), atol=0.05)


def test_bfloat16_prediction_of_a_float32_model_is_close(fitted_fp32):
    reference = fitted_fp32.predict_proba(TEXTS)
    fitted_fp32.set_params(precision="bfloat16")
    try:
        proba = fitted_fp32.predict_proba(TEXTS)
    finally:
        fitted_fp32.set_params(precision="float32")
    assert_valid_proba(proba, len(TEXTS))
    assert proba.dtype == reference.dtype
    # bfloat16 keeps 8 significant bits (relative error ~4e-3 per product): the probabilities
    # move a little but by far less than a prediction-changing amount.
    difference = np.abs(proba - reference).max()
    assert 0 < difference < 2e-2
    np.testing.assert_array_equal(fitted_fp32.predict_proba(TEXTS), reference)


def test_auto_runs_the_forward_pass_in_bfloat16_where_the_cpu_supports_it(monkeypatch, fitted_fp32):
    seen = []

    def record(module, args):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))

    handle = fitted_fp32.module_.register_forward_pre_hook(record)
    try:
        fitted_fp32.set_params(precision="auto")
        monkeypatch.setattr(runtime, "cpu_has_native_bfloat16", lambda: True)
        fitted_fp32.predict_proba(TEXTS[:2])
        # The runtime is resolved once per change of device or precision, not per call:
        # switch away and back so that "auto" is resolved again, on the other kind of CPU.
        fitted_fp32.set_params(precision="float32")
        fitted_fp32.predict_proba(TEXTS[:1])
        assert seen[-1][0] is False
        monkeypatch.setattr(runtime, "cpu_has_native_bfloat16", lambda: False)
        fitted_fp32.set_params(precision="auto")
        fitted_fp32.predict_proba(TEXTS[:2])
    finally:
        handle.remove()
        fitted_fp32.set_params(precision="float32")
    assert seen[0] == (True, torch.bfloat16)
    assert seen[-1][0] is False


def test_precision_page_examples_run():
    page = Path(__file__).resolve().parents[1] / "docs" / "precision.md"
    if not page.is_file():
        pytest.skip(f"{page} is not part of this installation")
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(page), module_relative=False, optionflags=flags)
    assert result.attempted >= 5
    assert result.failed == 0
