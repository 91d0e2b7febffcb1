"""Text classification with GPT-2 as scikit-learn estimators.

Public names are imported on first use, so ``import sklearn_gpt2`` (and the command line's
``--help``) does not import torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: Public name -> the module that defines it.
_PUBLIC = {
    "GPT2PromptClassifier": "._prompt_classifier",
    "GPT2SequenceClassifier": "._classifier",
    "clear_checkpoint_cache": ".models.checkpoint",
}

__all__ = [
    "GPT2PromptClassifier",
    "GPT2SequenceClassifier",
    "__version__",
    "clear_checkpoint_cache",
]

if TYPE_CHECKING:
    from ._classifier import GPT2SequenceClassifier
    from ._prompt_classifier import GPT2PromptClassifier
    from .models.checkpoint import clear_checkpoint_cache


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
