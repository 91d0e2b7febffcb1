"""The frozen backbone's pass for ``tuning="head"``: one pass per text for every ``max_length``.

With causal attention, the hidden state of a decoder at position ``j`` depends only on the
text's first ``j + 1`` tokens. So the pooled feature of a text cut to ``k`` tokens, whatever
the pooling (last token, mean, weighted mean), is a function of the states at positions
``0..k-1`` of any longer pass of the same text. Head mode therefore reads each text of a
decoder once, up to :func:`reach` tokens (at least ``max_length``, and
:data:`HORIZON_TOKENS` when ``max_length`` is smaller), keeps the states of its positions,
and derives from them the feature of every ``max_length`` up to that reach. A grid search over
``max_length`` (and ``pooling``) then runs the backbone once per text, whatever the order of
its candidates. A row is derived only when its tokens are the leading tokens of the longer
tokenization of its text (right truncation, no special token appended); any other row is
computed on its own.

Memory: a text of ``n`` tokens keeps ``min(n, reach) * hidden_size`` float32 values (GPT-2
124M, a 25-token sentence: 77 KB). The states of one checkpoint are bounded by
:data:`MAX_CACHED_STATE_VALUES` (about 200 MB), least recently used out first; a text whose
states were evicted is read again only for a ``max_length`` it was not used with before (the
pooled features themselves stay in the checkpoint's feature cache).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Hashable
from typing import Any

import numpy as np
import torch

from ..models.families import max_positions
from ..models.pooling import pool_states
from ..text.rows import Rows
from ..text.runner import run_rows
from ..text.tokenize import TokenCache

#: Tokens each text of a decoder is read to when ``max_length`` is smaller: every
#: ``max_length`` up to it shares one pass.
HORIZON_TOKENS = 128
#: Upper bound on the per-position state values (floats) kept per checkpoint: about 200 MB.
MAX_CACHED_STATE_VALUES = 50_000_000

#: The per-position states of each feature cache (one per checkpoint, or per loaded model).
_STATE_CACHES: weakref.WeakKeyDictionary[TokenCache, TokenCache] = weakref.WeakKeyDictionary()


def state_cache(feature_cache: TokenCache) -> TokenCache:
    """The cache of per-position states that goes with ``feature_cache``."""
    cache = _STATE_CACHES.get(feature_cache)
    if cache is None:
        cache = _STATE_CACHES.setdefault(feature_cache, TokenCache(MAX_CACHED_STATE_VALUES))
    return cache


def reach(max_length: int, context: int | None) -> int:
    """How many tokens of each text the pass reads: ``max(max_length, HORIZON_TOKENS)``."""
    longest = max(max_length, HORIZON_TOKENS)
    return longest if context is None else min(longest, max(context, max_length))


def compute_features(
    module: Any,
    rows: Rows,
    device: torch.device,
    autocast: Any,
    batch_size: int,
    pad_id: int,
    pooling: str | None = None,
) -> np.ndarray:
    """Pooled features (float32, one row per row) of ``rows`` under ``module``'s backbone.

    Rows go through the one batch runner (batched by length, padded as the module expects),
    in evaluation mode (no dropout), without autograd, in the precision ``autocast`` sets.
    ``pooling="states"`` (decoders) gives instead an object array holding, for each row, the
    float32 states of its positions, ``(n_tokens, hidden)``.
    """

    def engine(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        features = module.features(
            torch.from_numpy(input_ids).to(device),
            torch.from_numpy(attention_mask).to(device),
            pooling=pooling,
        )
        values = features.float().cpu().numpy()
        if pooling != "states":
            return values  # type: ignore[no-any-return]
        # Left padding: each row's real tokens are its last positions.
        states = np.empty(len(values), dtype=object)
        for row, n in enumerate(attention_mask.sum(axis=1)):
            states[row] = values[row, values.shape[1] - int(n) :].copy()
        return states

    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode(), autocast():
            return run_rows(
                rows, engine, batch_size=batch_size, pad_token_id=pad_id, pad_left=module.pads_left
            )
    finally:
        module.train(was_training)


def derived_features(
    estimator: Any,
    feature_cache: TokenCache,
    context: Hashable,
    row_tokens: list[np.ndarray],
    texts: list[str],
    pooling: str,
) -> dict[int, np.ndarray]:
    """Features of the rows that derive from a pass of their text, by position in the list.

    Parameters
    ----------
    estimator : BaseTextClassifier
        The fitted estimator (its module, tokenizer, batch size and runtime).
    feature_cache : TokenCache
        The feature cache whose state cache holds the passes.
    context : hashable
        What else a state depends on (precision, device kind).
    row_tokens : list of ndarray
        The rows' token ids (each the text cut to ``max_length`` tokens).
    texts : list of str
        The text of each row.
    pooling : {"last", "mean", "weighted_mean"}
        How to pool.
    """
    module = estimator._net.module_
    spec = dataclasses.replace(
        estimator._tokenization_spec(),
        max_length=reach(estimator.max_length, max_positions(module.model.config)),
    )
    longer = estimator._tokenize(texts, spec)
    usable = [
        i
        for i, (row, whole) in enumerate(zip(row_tokens, longer, strict=True))
        if len(whole) >= len(row) and np.array_equal(whole[: len(row)], row)
    ]
    states = state_cache(feature_cache)
    keys = {i: (context, longer[i].tobytes()) for i in usable}
    found = {i: states.get(keys[i]) for i in usable}  # type: ignore[arg-type]
    todo = list(dict.fromkeys(keys[i] for i in usable if found[i] is None))
    if todo:
        first = {key: i for i, key in reversed(list(keys.items()))}
        runtime = estimator.runtime_
        fresh = compute_features(
            module,
            Rows.one_per_text([longer[first[key]] for key in todo]),
            runtime.device,
            runtime.autocast,
            estimator.batch_size,
            estimator.tokenizer_.pad_token_id,
            pooling="states",
        )
        computed = dict(zip(todo, fresh, strict=True))
        for key, value in computed.items():
            states.put(key, value.ravel())  # type: ignore[arg-type]
        found = {i: computed.get(keys[i], found[i]) for i in usable}
    width = int(module.model.config.hidden_size)
    return {
        i: pool_states(np.asarray(found[i]).reshape(-1, width), len(row_tokens[i]), pooling)
        for i in usable
    }
