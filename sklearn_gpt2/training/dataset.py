"""Rows as a torch dataset for skorch's loop, and the collator that pads each batch in numpy.

Each row carries its text's index in the caller's input, a target (a class index, or a
sequence of token ids with ``-100`` where no loss is taken) and the loss weight of its text,
so the loss reads the weights from the batch and a split can keep a text's rows together.
Padding is :func:`sklearn_gpt2.text.rows.pad_batch`, the one the prediction runner uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..text.rows import Rows, pad_batch, pad_targets, row_lengths

Row = tuple[Any, Any, int, float]

#: Keys of a batch's inputs that are not the module's arguments.
BOOKKEEPING_KEYS = frozenset({"text_index", "sample_weight"})


class TextDataset(Dataset[Row]):
    """Rows (token ids or feature vectors), a target per row, text indices and weights.

    Parameters
    ----------
    token_ids : list of ndarray
        One array per row: token ids, or (``tuning="head"``) a feature vector.
    targets : ndarray or list or None
        A class index per row (ints), or one array of target token ids per row, aligned with
        that row's ``token_ids`` (``-100`` where no loss is taken); None for unlabeled rows.
    text_index : ndarray of int or None
        Index of each row's text in the caller's input; ``arange`` by default.
    weights : ndarray of float or None
        Loss weight of each row (its text's weight); None: all rows weigh the same.
    """

    def __init__(
        self,
        token_ids: list[np.ndarray],
        targets: Any = None,
        text_index: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> None:
        n = len(token_ids)
        self.token_ids = token_ids
        if targets is None:
            targets = np.full(n, -1, dtype=np.int64)
        self.targets = targets if isinstance(targets, list) else np.asarray(targets)
        self.text_index = np.arange(n) if text_index is None else np.asarray(text_index)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float32)
        self.lengths = row_lengths(token_ids)

    @classmethod
    def from_rows(cls, rows: Rows, targets: Any = None) -> TextDataset:
        """A dataset of tokenized ``rows`` (text indices kept)."""
        return cls(rows.token_ids, targets, rows.text_index)

    @property
    def labels(self) -> np.ndarray:
        """Class-index targets (for stratified splits)."""
        return np.asarray(self.targets)

    def weighted(self, text_weights: np.ndarray | None) -> TextDataset:
        """The same rows, each weighted by its text's entry of ``text_weights``."""
        self.weights = None if text_weights is None else text_weights[self.text_index]
        return self

    def __len__(self) -> int:
        return len(self.token_ids)

    def __getitem__(self, index: int) -> Row:
        weight = 1.0 if self.weights is None else float(self.weights[index])
        return self.token_ids[index], self.targets[index], int(self.text_index[index]), weight

    def subset(self, indices: np.ndarray) -> TextDataset:
        """Return the rows at ``indices`` as a new dataset (keeping text indices and weights)."""
        targets = (
            [self.targets[i] for i in indices]
            if isinstance(self.targets, list)
            else self.targets[indices]
        )
        return TextDataset(
            [self.token_ids[i] for i in indices],
            targets,
            self.text_index[indices],
            None if self.weights is None else self.weights[indices],
        )


def _bookkeeping(rows: list[Row], batch: dict[str, torch.Tensor], weighted: bool) -> None:
    batch["text_index"] = torch.tensor([row[2] for row in rows], dtype=torch.long)
    if weighted:
        batch["sample_weight"] = torch.tensor([row[3] for row in rows], dtype=torch.float32)


class PaddedBatchCollator:
    """Pad a list of rows to the longest of the batch; sequence targets are padded with -100.

    Parameters
    ----------
    pad_token_id : int
        Id written in padded positions (masked out by the attention mask).
    left : bool
        Pad on the left (decoders) or on the right (encoders).
    weighted : bool, default=False
        Whether batches carry their rows' loss weights (``sample_weight``).
    """

    def __init__(self, pad_token_id: int, left: bool, weighted: bool = False) -> None:
        self.pad_token_id = pad_token_id
        self.left = left
        self.weighted = weighted

    def __call__(self, rows: list[Row]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Return ``(inputs, targets)``: ids, mask, text indices (and weights); targets."""
        input_ids, attention_mask = pad_batch(
            [row[0] for row in rows], self.pad_token_id, self.left
        )
        if np.ndim(rows[0][1]) == 0:
            targets = torch.tensor([int(row[1]) for row in rows], dtype=torch.long)
        else:
            padded = pad_targets([row[1] for row in rows], input_ids.shape[1], self.left)
            targets = torch.from_numpy(padded)
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
        }
        _bookkeeping(rows, batch, self.weighted)
        return batch, targets


class FeatureCollator:
    """Stack rows of cached features into a batch ``({"features", ...}, targets)``.

    Parameters
    ----------
    weighted : bool, default=False
        Whether batches carry their rows' loss weights (``sample_weight``).
    """

    def __init__(self, weighted: bool = False) -> None:
        self.weighted = weighted

    def __call__(self, rows: list[Row]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Return the batch of ``rows`` (feature vector, class index, text index, weight)."""
        batch = {"features": torch.from_numpy(np.stack([row[0] for row in rows]))}
        _bookkeeping(rows, batch, self.weighted)
        targets = torch.tensor([int(row[1]) for row in rows], dtype=torch.long)
        return batch, targets
