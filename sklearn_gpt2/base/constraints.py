"""Parameter constraints scikit-learn does not have: devices to compute on, skorch callbacks."""

from __future__ import annotations

from typing import Any

import torch
from sklearn.utils._param_validation import Options
from skorch.callbacks import Callback


class _Check(Options):  # type: ignore[misc]
    # scikit-learn accepts only its own constraint classes in a constraints table; Options is
    # the one whose test (is_satisfied_by) and message (__str__) a subclass can redefine.
    def __init__(self) -> None:
        super().__init__(object, set())


#: Device types that hold no data or run no model ("meta" tensors have shapes only), and
#: Apple's GPUs ("mps"), which this package has not been tested on: refused rather than
#: silently trusted.
_NOT_COMPUTE_DEVICES = frozenset(
    {"meta", "lazy", "mkldnn", "opengl", "opencl", "ideep", "fpga", "vulkan", "mps"}
)


class Device(_Check):
    """``"auto"``, a torch.device, or a string torch parses as one (``"cpu"``, ``"cuda:1"``).

    Devices that cannot hold a model's weights and run it (``"meta"``) are refused.
    """

    def is_satisfied_by(self, val: Any) -> bool:
        """Whether ``val`` names a device a model can run on."""
        if val == "auto":
            return True
        if isinstance(val, str):
            try:
                val = torch.device(val)
            except (RuntimeError, TypeError, ValueError):
                return False
        return isinstance(val, torch.device) and val.type not in _NOT_COMPUTE_DEVICES

    def __str__(self) -> str:
        return (
            "'auto' or a torch device that can hold and run a model, such as 'cpu', 'cuda' "
            "or 'cuda:1' (not 'meta', whose tensors hold no values; not 'mps': Apple GPUs are "
            "not supported yet, use 'cpu' on a Mac)"
        )


class CallbackList(_Check):
    """A list of skorch callbacks, each an instance or a ``(name, instance)`` pair."""

    def is_satisfied_by(self, val: Any) -> bool:
        """Whether ``val`` is such a list."""
        if not isinstance(val, list):
            return False
        for item in val:
            if isinstance(item, tuple):
                if len(item) != 2 or not isinstance(item[0], str):
                    return False
                item = item[1]
            if not isinstance(item, Callback):
                return False
        return True

    def __str__(self) -> str:
        return (
            "a list of skorch callbacks (instances of skorch.callbacks.Callback, or "
            "(name, callback) tuples)"
        )
