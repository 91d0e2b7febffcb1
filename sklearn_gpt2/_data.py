"""Tokenize once, batch by length, pad per batch.

Texts are tokenized once per (checkpoint, ``max_length``) and kept as small integer arrays, never
as one padded tensor of the whole input: a batch is padded only to its own longest text, when it
is collated. Training batches group texts of similar length (shuffled within and across groups);
prediction batches are sorted by length and the caller's order is restored afterwards.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

#: Upper bound on the tokens kept per checkpoint cache; old entries are evicted first.
MAX_CACHED_TOKENS = 20_000_000
_TOKENIZE_CHUNK = 1024


class TokenCache:
    """A least-recently-used map ``(max_length, text) -> token ids``, bounded in tokens."""

    def __init__(self, max_tokens: int = MAX_CACHED_TOKENS) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._n_tokens = 0

    def get(self, key: tuple[int, str]) -> np.ndarray | None:
        ids = self._entries.get(key)
        if ids is not None:
            self._entries.move_to_end(key)
        return ids

    def put(self, key: tuple[int, str], ids: np.ndarray) -> None:
        if key in self._entries:
            return
        self._entries[key] = ids
        self._n_tokens += len(ids)
        while self._n_tokens > self.max_tokens and self._entries:
            _, old = self._entries.popitem(last=False)
            self._n_tokens -= len(old)


def _encodable(text: str) -> str:
    """Replace lone surrogates, which UTF-8 cannot encode and tokenizers reject, with U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 with surrogatepass joins valid surrogate pairs; 'replace' marks the lone ones.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def tokenize(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[np.ndarray]:
    """Tokenize ``texts`` without padding, truncated to ``max_length`` tokens.

    A text with no tokens (the empty string, for a tokenizer that adds no special tokens)
    becomes a single EOS token, so every text has a real token to be classified from.

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerBase
        The checkpoint's tokenizer.
    texts : sequence of str
        Texts to encode.
    max_length : int
        Maximum number of tokens per text, special tokens included.

    Returns
    -------
    token_ids : list of ndarray of int32
    """
    encoded: list[np.ndarray] = []
    fallback = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        chunk = [_encodable(text) for text in texts[start : start + _TOKENIZE_CHUNK]]
        batch = tokenizer(chunk, truncation=True, max_length=max_length, padding=False)
        for ids in batch["input_ids"]:
            encoded.append(np.asarray(ids if ids else [fallback], dtype=np.int32))
    return encoded


def tokenize_cached(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    cache: TokenCache | None,
) -> list[np.ndarray]:
    """Like :func:`tokenize`, reusing ids of texts seen before with the same ``max_length``."""
    if cache is None:
        return tokenize(tokenizer, texts, max_length)
    result: list[np.ndarray | None] = [cache.get((max_length, text)) for text in texts]
    missing = [i for i, ids in enumerate(result) if ids is None]
    # Duplicated texts are tokenized once.
    unique_missing = list(dict.fromkeys(texts[i] for i in missing))
    fresh = dict(zip(unique_missing, tokenize(tokenizer, unique_missing, max_length), strict=True))
    for text, ids in fresh.items():
        cache.put((max_length, text), ids)
    for i in missing:
        result[i] = fresh[texts[i]]
    return result  # type: ignore[return-value]  # every slot is filled now


class TokenizedTexts(Dataset[tuple[np.ndarray, int]]):
    """Token ids of texts, with optional label indices.

    Parameters
    ----------
    token_ids : list of ndarray
        One array of token ids per text.
    labels : ndarray of int or None
        Label index per text (``-1`` for unlabeled data).
    """

    def __init__(self, token_ids: list[np.ndarray], labels: np.ndarray | None = None) -> None:
        self.token_ids = token_ids
        n = len(token_ids)
        self.labels = np.full(n, -1, dtype=np.int64) if labels is None else np.asarray(labels)
        self.lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=n)

    def __len__(self) -> int:
        return len(self.token_ids)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.token_ids[index], int(self.labels[index])

    def subset(self, indices: np.ndarray) -> TokenizedTexts:
        """Return the texts at ``indices`` as a new dataset."""
        return TokenizedTexts([self.token_ids[i] for i in indices], self.labels[indices])


def inference_order(lengths: np.ndarray) -> np.ndarray:
    """Longest texts first, so an out-of-memory error shows on the first batch."""
    return np.argsort(-lengths, kind="stable")


class SortedBatchSampler(Sampler[list[int]]):
    """Batches of texts of similar length, in a fixed order (for prediction)."""

    def __init__(self, lengths: np.ndarray, batch_size: int) -> None:
        self.order = inference_order(lengths)
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(0, len(self.order), self.batch_size):
            yield self.order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of texts of similar length (for training).

    Each epoch shuffles all texts, cuts them into groups of ``group_factor`` batches, sorts each
    group by length, cuts it into batches and shuffles the batches: little padding, yet every
    epoch sees a different random batching (as the Hugging Face ``group_by_length`` sampler).
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        rng: np.random.Generator,
        group_factor: int = 50,
    ) -> None:
        self.lengths = lengths
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


class PaddedBatchCollator:
    """Pad a list of ``(token_ids, label)`` pairs to the longest text of the batch.

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

    def __call__(
        self, items: list[tuple[np.ndarray, int]]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        width = max(len(ids) for ids, _ in items)
        input_ids = np.full((len(items), width), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(items), width), dtype=np.int64)
        for row, (ids, _) in enumerate(items):
            span = slice(width - len(ids), width) if self.left else slice(0, len(ids))
            input_ids[row, span] = ids
            attention_mask[row, span] = 1
        labels = torch.tensor([label for _, label in items], dtype=torch.long)
        batch: dict[str, Any] = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
        }
        return batch, labels
