"""Very long texts tokenized piece by piece, cut at spaces, reading only the pieces needed.

A tokenizer's whole encoding of a text of a million characters takes about 170 MB (ids,
offsets and token strings of some 300,000 tokens). Cut into pieces of at most
:data:`PIECE_CHARS` characters at a space, the text is encoded one piece at a time, and only
as many pieces from each end as the truncation keeps (the first piece alone for
``truncation="head"``). The cut is placed where the pieces' tokens join into the whole text's
tokens: before the space for byte-level BPE (GPT-2's ``" word"`` tokens), after it for a
tokenizer that marks the start of every piece (SentencePiece's prefix ``"▁"``), as a probe of
the tokenizer shows once. A tokenizer for which neither holds is given the whole text.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import numpy as np

#: Texts longer than this (characters) are tokenized piece by piece.
PIECE_CHARS = 20_000
_PROBE = "the film was wonderful and the cast superb"
_CONVENTIONS: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def _encode(tokenizer: Any, text: str) -> list[int]:
    # verbose=False: a piece may exceed the model's length, which is not an error here.
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def split_convention(tokenizer: Any) -> str | None:
    """Where a cut at a space keeps the tokens of the whole: ``"before"``, ``"after"`` or None."""
    try:
        return _CONVENTIONS[tokenizer]
    except (KeyError, TypeError):
        pass
    whole = _encode(tokenizer, _PROBE)
    space = _PROBE.index(" was")
    convention = None
    for name, at in (("before", space), ("after", space + 1)):
        if _encode(tokenizer, _PROBE[:at]) + _encode(tokenizer, _PROBE[at:]) == whole:
            convention = name
            break
    with contextlib.suppress(TypeError):
        _CONVENTIONS[tokenizer] = convention
    return convention


def cut_points(text: str, convention: str, size: int = PIECE_CHARS) -> list[int]:
    """Piece boundaries ``[0, ..., len(text)]``: each piece at most ``size`` characters.

    A boundary is at a single space between two non-spaces (before or after it, as
    ``convention`` says); a stretch of ``size / 2`` characters without one is cut where it is.
    """
    points = [0]
    while len(text) - points[-1] > size:
        low, high = points[-1] + size // 2, points[-1] + size
        space = text.rfind(" ", low, high)
        while space > low and (text[space - 1].isspace() or text[space + 1].isspace()):
            space = text.rfind(" ", low, space)
        if space <= low:
            points.append(high)
        else:
            points.append(space if convention == "before" else space + 1)
    points.append(len(text))
    return points


def encode_ends(tokenizer: Any, text: str, front: int | None, back: int) -> tuple[np.ndarray, bool]:
    """The tokens of ``text`` (no special tokens) from its two ends, piece by piece.

    Pieces are read from the start until they hold ``front`` tokens (None: every piece), then
    from the end until they hold ``back``, never a piece twice.

    Returns
    -------
    tokens : ndarray of int32
        The front pieces' tokens, then the back pieces' tokens.
    whole : bool
        Whether every piece was read (``tokens`` is the whole text's).
    """
    convention = split_convention(tokenizer)
    if convention is None:
        return np.asarray(_encode(tokenizer, text), dtype=np.int32), True
    points = cut_points(text, convention)
    first, last = 0, len(points) - 1  # pieces [first, last) are not read yet
    front_parts: list[np.ndarray] = []
    back_parts: list[np.ndarray] = []
    n_front = n_back = 0
    while first < last and (front is None or n_front < front):
        piece = np.asarray(_encode(tokenizer, text[points[first] : points[first + 1]]), np.int32)
        front_parts.append(piece)
        n_front += len(piece)
        first += 1
    while first < last and n_back < back:
        last -= 1
        piece = np.asarray(_encode(tokenizer, text[points[last] : points[last + 1]]), np.int32)
        back_parts.append(piece)
        n_back += len(piece)
    parts = front_parts + back_parts[::-1]
    tokens = np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)
    return tokens, first == last
