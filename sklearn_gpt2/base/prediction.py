"""Prediction shared by every estimator: rows through the one batch runner, back to texts.

A text's rows (one, or the windows of a long text) are run in length-sorted batches padded in
numpy (:func:`sklearn_gpt2.text.runner.run_rows`), with the estimator's module as the engine,
in one autocast region; the rows' probabilities are combined per text in the caller's order
(:func:`sklearn_gpt2.text.runner.combine_rows`). The training mode decides how a row becomes
probabilities (``tuning="head"`` classifies cached features).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..text.predictions import PredictionsFromProbaMixin
from ..text.rows import Rows
from ..text.runner import combine_rows, run_rows
from ..text.validation import check_texts
from .faults import out_of_memory_error


class PredictionMixin(PredictionsFromProbaMixin):
    """``predict_proba`` on raw texts; ``predict_log_proba``, ``predict``, ``score`` from it."""

    def _proba_from_outputs(self, outputs: torch.Tensor) -> np.ndarray:
        """Probabilities (float64, rows summing to 1) from one batch of module outputs."""
        return torch.softmax(outputs.double(), dim=-1).cpu().numpy()

    def _outputs(self, module: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """What the module computes to predict from one batch (its logits by default)."""
        return module(**inputs)

    def _row_proba(self, rows: Rows) -> np.ndarray:
        """Probabilities of each row, through the one batch runner."""
        module = self._net.module_
        device = self.runtime_.device

        def engine(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
            inputs = {
                "input_ids": torch.from_numpy(input_ids).to(device),
                "attention_mask": torch.from_numpy(attention_mask).to(device),
            }
            return self._proba_from_outputs(self._outputs(module, inputs))

        pad_token_id = self.tokenizer_.pad_token_id
        return run_rows(
            rows,
            engine,
            batch_size=self.batch_size,
            pad_token_id=pad_token_id,
            pad_left=module.pads_left,
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of texts ``X``.

        Parameters
        ----------
        X : iterable of str
            Texts to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``; rows sum to 1; rows follow the order of ``X``.
        """
        with self._lock():  # type: ignore[attr-defined]
            return self._predict_proba(X)

    def _predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        texts = check_texts(X)
        self._check_max_length(self._context_size())
        self._refresh_runtime()
        net = self._net
        rows = self._rows(texts)
        net.module_.eval()
        # One autocast region around all batches: autocast caches its low-precision copy of
        # each weight until the region ends, so weights are cast once per call, not per batch.
        try:
            with torch.inference_mode(), self.runtime_.autocast():
                row_proba = self._tuning_mode().row_proba(self, rows, texts)
        except torch.OutOfMemoryError as error:
            raise out_of_memory_error(error, self, "predict") from error
        if not np.isfinite(row_proba).all():
            raise ValueError(
                f"The model gave non-finite probabilities (NaN): its weights or the "
                f"checkpoint {self.model_name_or_path!r} hold NaN or infinite values. Refit "
                f"from a sound checkpoint."
            )
        return combine_rows(row_proba, rows)
