"""Pooling: one feature vector per text from a model's hidden states at its real tokens.

``pooling`` names how the vector the classification head reads is formed:

* ``"auto"``: what the model's own head reads (a decoder: its last real token; an encoder:
  its own pooling, e.g. BERT's pooler over ``[CLS]``);
* ``"last"``: the hidden state of the last real token;
* ``"mean"``: the mean of the hidden states of the real tokens (what sentence-transformers
  checkpoints such as MiniLM were trained to produce);
* ``"weighted_mean"``: the mean weighted by position, ``w_i = i / sum(1..n)`` for the real
  tokens ``i = 1..n`` (SGPT, Muennighoff 2022): later tokens of a decoder have read more of
  the text and weigh more. Decoders only: an encoder's tokens all read the whole text.

Padding never counts: a text gets the same vector alone and in any batch. The same numbers
come from a text's per-position states (:func:`pool_states`), which is how ``tuning="head"``
derives the vector of any shorter ``max_length`` from one longer pass of a decoder.
"""

from __future__ import annotations

import numpy as np
import torch

#: The values of the ``pooling`` parameter.
POOLINGS = ("auto", "last", "mean", "weighted_mean")


def check_pooling(pooling: str, decoder: bool, model_type: str) -> None:
    """Refuse a pooling that does not apply to the model (weighted_mean on an encoder)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}.")
    if pooling == "weighted_mean" and not decoder:
        raise ValueError(
            f"pooling='weighted_mean' weighs each token by its position, for decoders whose "
            f"later tokens have read more of the text; every token of this {model_type!r} "
            f"encoder reads the whole text. Use pooling='mean' (or 'auto', 'last')."
        )


def resolved(pooling: str, decoder: bool) -> str:
    """The pooling a decoder computes for ``pooling`` (``"auto"`` is its last token)."""
    return "last" if decoder and pooling == "auto" else pooling


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pooled features ``(batch, hidden)`` from hidden states ``(batch, positions, hidden)``.

    Parameters
    ----------
    hidden : Tensor of shape (batch, positions, hidden)
        Hidden states of a padded batch (either side).
    attention_mask : Tensor of shape (batch, positions)
        1 at real tokens, 0 at padding.
    pooling : {"last", "mean", "weighted_mean"}
        How to pool (``"auto"`` is resolved by the caller).
    """
    mask = attention_mask.bool()
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask, positions, -1).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "mean":
        weights = mask.to(torch.float32)
    elif pooling == "weighted_mean":
        # 1, 2, ..., n over the real tokens, 0 on padding, whichever side it is on.
        weights = attention_mask.cumsum(dim=1).to(torch.float32) * mask
    else:
        raise ValueError(f"Cannot pool with {pooling!r}; use one of {POOLINGS[1:]}.")
    # Padded positions may hold anything: select them away rather than multiply by zero.
    states = torch.where(mask.unsqueeze(-1), hidden.float(), 0.0)
    total = torch.einsum("bt,bth->bh", weights, states)
    return total / weights.sum(dim=1, keepdim=True).clamp_min(1.0)


def pool_states(states: np.ndarray, length: int, pooling: str) -> np.ndarray:
    """The pooled vector of a text's first ``length`` tokens, from its per-position states.

    Parameters
    ----------
    states : ndarray of shape (n_positions, hidden)
        A decoder's hidden states of one text's tokens (at least ``length`` of them). With
        causal attention, the states of the first ``length`` positions are those of the text
        cut to ``length`` tokens.
    length : int
        How many leading tokens to pool.
    pooling : {"last", "mean", "weighted_mean"}
        How to pool.
    """
    head = states[:length].astype(np.float32, copy=False)
    if pooling == "last":
        return head[-1].copy()
    if pooling == "mean":
        return head.mean(axis=0, dtype=np.float32)
    if pooling == "weighted_mean":
        weights = np.arange(1, length + 1, dtype=np.float32)
        return (weights @ head) / weights.sum()  # type: ignore[no-any-return]
    raise ValueError(f"Cannot pool with {pooling!r}; use one of {POOLINGS[1:]}.")
