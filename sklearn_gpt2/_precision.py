"""Choosing and applying the numeric precision of training and prediction.

``"auto"`` picks bfloat16 autocast where the hardware runs it natively (CUDA GPUs from Ampere
on; CPUs with AVX512-BF16 or AMX) and float32 elsewhere: on a CPU without native bfloat16,
bfloat16 matrix products are emulated and far slower than float32.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@functools.cache
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool({"avx512_bf16", "amx_bf16"} & flags)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """Return the concrete precision (``float32``, ``bfloat16`` or ``float16``) to use.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16", "float16"}
        What the user asked for.
    device : torch.device
        Where the model runs.
    """
    if precision == "float16" and device.type != "cuda":
        raise ValueError(
            f"precision='float16' needs a CUDA device (loss scaling is CUDA-only); the model "
            f"runs on {device.type!r}. Use precision='bfloat16' or 'float32' instead."
        )
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float32"
    if device.type == "cpu":
        return "bfloat16" if cpu_has_native_bfloat16() else "float32"
    return "float32"


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Run the enclosed forward pass in ``precision`` (a no-op for float32)."""
    if precision == "float32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield
