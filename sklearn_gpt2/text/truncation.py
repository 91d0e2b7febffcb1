"""What of a too-long text is kept: its head, its tail, both, or every window (no torch).

A text's row is ``lead + body + trail``: ``lead`` holds the tokens every row starts with (a
BOS token, a template's prefix), ``trail`` those it ends with (a template's suffix), and the
body is the text's own tokens. Only the body is ever cut, to the ``room`` that ``max_length``
leaves it:

* ``"head"`` keeps the first ``room`` tokens, ``"tail"`` the last ``room``;
* ``"head+tail"`` keeps the first quarter of the room and the last three quarters: the split
  128 + 382 of 510 tokens that Sun et al. (2019, "How to Fine-Tune BERT for Text
  Classification?") found best on IMDB, scaled to ``room``;
* ``"window"`` keeps everything, as windows of ``room`` tokens whose starts are
  ``window_stride`` apart (half a window by default), the last one ending at the text's end;
  a text gives one row per window, as a 2-D array ``(n_windows, row_length)``.
"""

from __future__ import annotations

import numpy as np

from .rows import Rows
from .spec import TokenizationSpec

#: Sun et al. (2019): 128 head tokens and 382 tail tokens of BERT's 510.
HEAD_SHARE = 128 / 510


def head_tail_counts(room: int) -> tuple[int, int]:
    """Tokens kept from the start and from the end of a body cut to ``room`` (head+tail)."""
    head = round(room * HEAD_SHARE)
    return head, room - head


def window_starts(n_tokens: int, room: int, stride: int | None) -> np.ndarray:
    """Where each window of ``room`` tokens starts in a body of ``n_tokens`` tokens.

    Starts are ``stride`` apart (half a window when None); the last window ends at the body's
    end, so every window is full and the end is always read.
    """
    if n_tokens <= room:
        return np.zeros(1, dtype=np.int64)
    step = stride if stride is not None else max(1, room // 2)
    starts = np.arange(0, n_tokens - room, step, dtype=np.int64)
    return np.append(starts, n_tokens - room)


def cut(
    lead: np.ndarray, body: np.ndarray, trail: np.ndarray, room: int, spec: TokenizationSpec
) -> np.ndarray:
    """The row(s) of a text whose body has more than ``room`` tokens, as ``spec`` says.

    Returns a 1-D array (one row), or for ``truncation="window"`` a 2-D array with one row
    per window.
    """
    if spec.truncation == "window":
        starts = window_starts(len(body), room, spec.window_stride)
        width = min(room, len(body))
        windows = np.lib.stride_tricks.sliding_window_view(body, width)[starts]
        n = len(starts)
        return np.concatenate(
            [
                np.broadcast_to(lead, (n, len(lead))),
                windows,
                np.broadcast_to(trail, (n, len(trail))),
            ],
            axis=1,
        )
    if spec.truncation == "head":
        kept = body[:room]
    elif spec.truncation == "tail":
        kept = body[len(body) - room :]
    else:
        head, tail = head_tail_counts(room)
        kept = np.concatenate([body[:head], body[len(body) - tail :]])
    return np.concatenate([lead, kept, trail])


def as_window_rows(ids: np.ndarray, spec: TokenizationSpec) -> np.ndarray:
    """A text's one row as the spec returns it: 2-D ``(1, n)`` in window mode, else as is."""
    return ids[None, :] if spec.truncation == "window" and ids.ndim == 1 else ids


def text_rows(token_ids: list[np.ndarray]) -> Rows:
    """Rows of texts whose token ids are one row (1-D) or several (2-D) each, in order.

    Each row keeps the index of its text; the rows of one text are consecutive.
    """
    if all(ids.ndim == 1 for ids in token_ids):
        return Rows.one_per_text(token_ids)
    rows: list[np.ndarray] = []
    index: list[int] = []
    for text, ids in enumerate(token_ids):
        block = ids if ids.ndim == 2 else ids[None, :]
        rows.extend(block)
        index.extend([text] * len(block))
    return Rows(rows, np.asarray(index, dtype=np.int64), len(token_ids))
