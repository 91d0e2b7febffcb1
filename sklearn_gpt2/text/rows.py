"""Rows: token ids that carry their text's index, padded into batches with numpy (no torch).

A text may give several rows (the windows of a long text); every row knows the index of its
text in the caller's input, so a consumer scatters row results back to texts and averages the
rows of one text. Padding happens per batch, to the batch's longest row, on the side the model
needs (decoders: the left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Target of positions that take no loss (the convention of torch's cross-entropy).
IGNORE_INDEX = -100


@dataclass(frozen=True)
class Rows:
    """Token ids of rows, each with the index of the text it comes from.

    Parameters
    ----------
    token_ids : list of ndarray
        One array of token ids per row.
    text_index : ndarray of int
        Index of each row's text in the caller's input.
    n_texts : int
        How many texts the rows come from (every index is below it).
    """

    token_ids: list[np.ndarray]
    text_index: np.ndarray
    n_texts: int

    @classmethod
    def one_per_text(cls, token_ids: list[np.ndarray]) -> Rows:
        """Rows of texts that give one row each (row ``i`` is text ``i``)."""
        return cls(token_ids, np.arange(len(token_ids)), len(token_ids))

    @property
    def lengths(self) -> np.ndarray:
        """Token count of each row."""
        return row_lengths(self.token_ids)

    def __len__(self) -> int:
        return len(self.token_ids)


def row_lengths(token_ids: list[np.ndarray]) -> np.ndarray:
    """Token count of each row, as an int64 array."""
    return np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))


def pad_batch(
    token_ids: list[np.ndarray], pad_token_id: int, left: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Pad rows to the longest of them: ``(input_ids, attention_mask)``, both int64.

    Parameters
    ----------
    token_ids : list of ndarray
        The rows of one batch.
    pad_token_id : int
        Id written in padded positions (masked out by the attention mask).
    left : bool
        Pad on the left (decoders, whose last position must be the last real token) or on the
        right (encoders).
    """
    width = max(len(ids) for ids in token_ids)
    input_ids = np.full((len(token_ids), width), pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for row, ids in enumerate(token_ids):
        span = slice(width - len(ids), width) if left else slice(0, len(ids))
        input_ids[row, span] = ids
        attention_mask[row, span] = 1
    return input_ids, attention_mask


def pad_targets(targets: list[np.ndarray], width: int, left: bool) -> np.ndarray:
    """Pad per-token targets to ``width`` with ``IGNORE_INDEX``, aligned as :func:`pad_batch`."""
    padded = np.full((len(targets), width), IGNORE_INDEX, dtype=np.int64)
    for row, target in enumerate(targets):
        span = slice(width - len(target), width) if left else slice(0, len(target))
        padded[row, span] = target
    return padded


def position_ids(attention_mask: np.ndarray) -> np.ndarray:
    """Position ids counted over real tokens (``cumsum(mask) - 1``, 0 on padding)."""
    return np.maximum(np.cumsum(attention_mask, axis=-1) - 1, 0)
