"""Parameter constraints scikit-learn does not have: device strings and skorch callback lists."""

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


class Device(_Check):
    """``"auto"``, a torch.device, or a string torch parses as one (``"cpu"``, ``"cuda:1"``)."""

    def is_satisfied_by(self, val: Any) -> bool:
        """Whether ``val`` names a device."""
        if isinstance(val, torch.device) or val == "auto":
            return True
        if not isinstance(val, str):
            return False
        try:
            torch.device(val)
        except (RuntimeError, TypeError, ValueError):
            return False
        return True

    def __str__(self) -> str:
        return "'auto' or a torch device such as 'cpu', 'cuda' or 'cuda:1'"


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
