"""Batch samplers: length-grouped shuffled batches for training, length-sorted for prediction.

Both yield lists of dataset positions, so they plug into a torch ``DataLoader`` as its
``batch_sampler`` and into any other loop; they need nothing but numpy.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def inference_order(lengths: np.ndarray) -> np.ndarray:
    """Longest texts first, so an out-of-memory error shows on the first batch."""
    return np.argsort(-np.asarray(lengths), kind="stable")


class SortedBatchSampler:
    """Batches of texts of similar length, in a fixed order (for prediction).

    Parameters
    ----------
    lengths : ndarray of int
        Token count of each text.
    batch_size : int
        Texts per batch.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int) -> None:
        self.order = inference_order(lengths)
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(0, len(self.order), self.batch_size):
            yield self.order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)


class LengthGroupedBatchSampler:
    """Shuffled batches of texts of similar length (for training).

    Each epoch shuffles all texts, cuts them into groups of ``group_factor`` batches, sorts each
    group by length, cuts it into batches and shuffles the batches: little padding, yet every
    epoch sees a different random batching. This is the idea of transformers'
    ``get_length_grouped_indices``, which we do not call: it draws from torch's global random
    generator (ours is a seeded numpy generator per epoch, so a fit is reproducible without
    touching global state) and it moves the longest batch first, which we don't need.

    Parameters
    ----------
    lengths : ndarray of int
        Token count of each text.
    batch_size : int
        Texts per batch.
    rng : numpy.random.Generator
        Source of the shuffles.
    group_factor : int, default=50
        Batches per length-sorted group.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        rng: np.random.Generator,
        group_factor: int = 50,
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.rng = rng
        self.group_factor = group_factor

    def __iter__(self) -> Iterator[list[int]]:
        permutation = self.rng.permutation(len(self.lengths))
        group_size = self.batch_size * self.group_factor
        batches: list[np.ndarray] = []
        for start in range(0, len(permutation), group_size):
            group = permutation[start : start + group_size]
            group = group[np.argsort(-self.lengths[group], kind="stable")]
            batches.extend(
                group[i : i + self.batch_size] for i in range(0, len(group), self.batch_size)
            )
        for index in self.rng.permutation(len(batches)):
            yield batches[index].tolist()

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)
