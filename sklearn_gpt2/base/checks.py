"""Checks a fit or a prediction makes before any work: keywords, lengths, the validation split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..models.families import max_positions


class InputChecksMixin:
    """Refuse, with the fix, what would fail deep inside a library or silently mislead."""

    def _check_fit_params(self, fit_params: dict[str, Any]) -> None:
        # skorch would pass them to the module's forward, which takes none of them.
        if fit_params:
            raise TypeError(
                f"{type(self).__name__}.fit got unexpected keyword arguments "
                f"{sorted(fit_params)}; it takes the texts X and the labels y. Set "
                f"hyperparameters in the constructor or with set_params."
            )

    def _context_size(self) -> int | None:
        """The most tokens the fitted (or to be fitted) model reads at once."""
        net = getattr(self, "_net", None)
        if net is None or getattr(net, "module_", None) is None:
            return self._checkpoint.max_positions
        return max_positions(net.module_.model.config)

    def _longest_row(self) -> int:
        """The most tokens one row may hold (``max_length``; a prompt adds its label words)."""
        return int(self.max_length)

    def _check_max_length(self, context: int | None) -> None:
        longest = self._longest_row()
        if context is not None and longest > context:
            extra = longest - self.max_length
            what = (
                f"max_length={self.max_length}"
                if not extra
                else f"max_length={self.max_length} plus the longest label word ({extra} tokens)"
            )
            raise ValueError(
                f"{what} exceeds the model's context of {context} tokens; use "
                f"max_length <= {context - extra} (set_params(max_length=...))."
            )

    def _check_validation_split(self, label_indices: np.ndarray) -> None:
        """Refuse a ``validation_fraction`` that cannot be stratified, naming the label."""
        fraction = getattr(self, "validation_fraction", None)
        if fraction is None:
            return
        n_texts = len(label_indices)
        n_valid = math.ceil(fraction * n_texts)
        counts = np.bincount(label_indices, minlength=len(self.classes_))
        rare = int(np.argmin(counts))
        if counts[rare] < 2:
            raise ValueError(
                f"validation_fraction={fraction} holds out a stratified part "
                f"of the texts, which needs at least 2 texts of each class; class "
                f"{self.classes_[rare]!r} has {counts[rare]}. Add texts of that class or set "
                f"validation_fraction=None."
            )
        if min(n_valid, n_texts - n_valid) < len(self.classes_):
            raise ValueError(
                f"validation_fraction={fraction} of {n_texts} texts leaves "
                f"{n_valid} held out and {n_texts - n_valid} to train on, fewer than the "
                f"{len(self.classes_)} classes; use more texts or another validation_fraction."
            )
