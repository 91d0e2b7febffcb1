"""Tokenized texts as a torch dataset, and the collator that pads each batch to its own length.

Each row carries its text's index in the caller's input and a target that is either a class
index or a sequence of token ids (``-100`` where no loss is taken), so prediction restores the
caller's order (and can aggregate several rows of one text) from what the batches carry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

#: Target of positions that take no loss (the convention of torch's cross-entropy).
IGNORE_INDEX = -100

Row = tuple[np.ndarray, Any, int]


class TextDataset(Dataset[Row]):
    """Token ids of texts, with a target per row and the index of the text it comes from.

    Parameters
    ----------
    token_ids : list of ndarray
        One array of token ids per row.
    targets : ndarray or list or None
        A class index per row (ints), or one array of target token ids per row, aligned with
        that row's ``token_ids`` (``-100`` where no loss is taken); None for unlabeled rows.
    text_index : ndarray of int or None
        Index of each row's text in the caller's input; ``arange`` by default.
    """

    def __init__(
        self,
        token_ids: list[np.ndarray],
        targets: Any = None,
        text_index: np.ndarray | None = None,
    ) -> None:
        n = len(token_ids)
        self.token_ids = token_ids
        if targets is None:
            targets = np.full(n, -1, dtype=np.int64)
        self.targets = targets if isinstance(targets, list) else np.asarray(targets)
        self.text_index = np.arange(n) if text_index is None else np.asarray(text_index)
        self.lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=n)

    @property
    def labels(self) -> np.ndarray:
        """Class-index targets (for stratified splits)."""
        return np.asarray(self.targets)

    def __len__(self) -> int:
        return len(self.token_ids)

    def __getitem__(self, index: int) -> Row:
        return self.token_ids[index], self.targets[index], int(self.text_index[index])

    def subset(self, indices: np.ndarray) -> TextDataset:
        """Return the rows at ``indices`` as a new dataset (keeping their text indices)."""
        targets = (
            [self.targets[i] for i in indices]
            if isinstance(self.targets, list)
            else self.targets[indices]
        )
        return TextDataset([self.token_ids[i] for i in indices], targets, self.text_index[indices])


class PaddedBatchCollator:
    """Pad a list of rows to the longest of the batch; sequence targets are padded with -100.

    Parameters
    ----------
    pad_token_id : int
        Id written in padded positions (masked out by the attention mask).
    left : bool
        Pad on the left (decoders) or on the right (encoders).
    """

    def __init__(self, pad_token_id: int, left: bool) -> None:
        self.pad_token_id = pad_token_id
        self.left = left

    def _span(self, width: int, length: int) -> slice:
        return slice(width - length, width) if self.left else slice(0, length)

    def __call__(self, rows: list[Row]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Return ``(inputs, targets)``: ids, mask and text indices; padded targets."""
        width = max(len(ids) for ids, _, _ in rows)
        input_ids = np.full((len(rows), width), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for row, (ids, _, _) in enumerate(rows):
            span = self._span(width, len(ids))
            input_ids[row, span] = ids
            attention_mask[row, span] = 1
        if np.ndim(rows[0][1]) == 0:
            targets = torch.tensor([int(target) for _, target, _ in rows], dtype=torch.long)
        else:
            padded = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
            for row, (_, target, _) in enumerate(rows):
                padded[row, self._span(width, len(target))] = target
            targets = torch.from_numpy(padded)
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "text_index": torch.tensor([index for _, _, index in rows], dtype=torch.long),
        }
        return batch, targets
