"""Where and in what precision a model runs: resolved once per fit into a ``Runtime``.

``precision="auto"`` picks bfloat16 autocast where the hardware runs it natively (CUDA GPUs
from Ampere on; CPUs with AVX512-BF16 or AMX) and float32 elsewhere: on a CPU without native
bfloat16, bfloat16 matrix products are emulated and far slower than float32.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_has_native_bfloat16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX-BF16).

    Parameters
    ----------
    cpuinfo : pathlib.Path, default=Path("/proc/cpuinfo")
        Where the CPU flags are read from (Linux); no file means no native bfloat16.
    """
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool({"avx512_bf16", "amx_bf16"} & flags)
    return False


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn the ``device`` parameter into a torch device; ``"auto"`` is CUDA if present."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={device!r} is not a device torch knows ({error}). Use 'auto', 'cpu', "
            f"'cuda' or 'cuda:N'."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but no CUDA GPU is available. Use "
            f"device='cpu', or device='auto' to pick a GPU only when there is one."
        )
    return resolved


def resolve_precision(
    precision: str, device: torch.device, *, native_cpu_bfloat16: bool | None = None
) -> str:
    """Return the concrete precision (``float32``, ``bfloat16`` or ``float16``) to use.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16", "float16"}
        What the user asked for.
    device : torch.device
        Where the model runs.
    native_cpu_bfloat16 : bool or None, default=None
        Whether the CPU runs bfloat16 natively; None reads it from the machine.
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
        native = cpu_has_native_bfloat16() if native_cpu_bfloat16 is None else native_cpu_bfloat16
        return "bfloat16" if native else "float32"
    return "float32"


@dataclass(frozen=True)
class Runtime:
    """A resolved device and precision, used by training, prediction and persistence.

    Parameters
    ----------
    device : torch.device
        Where the model lives.
    precision : {"float32", "bfloat16", "float16"}
        The forward pass's precision (weights and optimizer stay float32).
    """

    device: torch.device
    precision: str

    @classmethod
    def resolve(cls, device: str | torch.device, precision: str) -> Runtime:
        """The runtime for the ``device`` and ``precision`` parameters of an estimator."""
        resolved = resolve_device(device)
        return cls(resolved, resolve_precision(precision, resolved))

    @classmethod
    def for_loading(cls, device: str, precision: str) -> tuple[Runtime, str, str]:
        """Where a loaded model goes, and the ``device``/``precision`` params it keeps.

        ``"auto"`` means a GPU when there is one. A CUDA device on a machine without CUDA
        falls back to the CPU with a warning (float16 then becomes float32, which the CPU can
        run).
        """
        resolved = resolve_device("auto") if device == "auto" else torch.device(device)
        if resolved.type == "cuda" and torch.cuda.is_available():
            if resolved.index is not None and resolved.index >= torch.cuda.device_count():
                resolved = torch.device("cuda")
        elif resolved.type == "cuda" or precision == "float16":
            new_precision = "float32" if precision == "float16" else precision
            warnings.warn(
                f"The classifier was saved for device={device!r}, precision={precision!r} but "
                f"CUDA is not available here; it is loaded on the CPU ("
                + ("device='cpu'" if device != "auto" else "device='auto'")
                + (", precision='float32'" if new_precision != precision else "")
                + ").",
                UserWarning,
                stacklevel=4,
            )
            resolved, precision = torch.device("cpu"), new_precision
            device = "auto" if device == "auto" else "cpu"
        return cls(resolved, resolve_precision(precision, resolved)), device, precision

    @property
    def cuda_devices(self) -> list[int]:
        """The CUDA device indices whose random state a fit forks (none on the CPU)."""
        if self.device.type != "cuda":
            return []
        index = self.device.index
        return [index if index is not None else torch.cuda.current_device()]

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the enclosed forward pass in this precision (a no-op for float32)."""
        with autocast(self.precision, self.device):
            yield

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for float16; a pass-through scaler otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "float16")


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Run the enclosed forward pass in ``precision`` (a no-op for float32)."""
    if precision == "float32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield
