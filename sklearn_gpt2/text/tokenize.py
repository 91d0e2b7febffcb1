"""Tokenize texts once per spec, without padding, into small integer arrays; cache them.

Texts are kept as one ``int32`` array each (2-D, one row per window, for
``truncation="window"``), never as one padded matrix of the whole input: a batch is padded
only to its own longest row, when it is collated. The cache is keyed by the
:class:`TokenizationSpec` and the text, so a grid search over ``max_length`` tokenizes each
text once per value, and two estimators on one checkpoint share what they both need.

A text too long for ``max_length`` is cut as :mod:`.truncation` says. A very long text (more
than :data:`PIECE_CHARS` characters) is tokenized in pieces cut at a space, only as many
pieces from each end as the truncation reads, so a text of a million characters never holds
the tokenizer's whole encoding (about 170 MB for GPT-2's) in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np

from .pieces import PIECE_CHARS, encode_ends
from .spec import TokenizationSpec
from .truncation import as_window_rows, cut, head_tail_counts

#: Upper bound on the tokens kept per checkpoint cache; old entries are evicted first.
MAX_CACHED_TOKENS = 20_000_000
_TOKENIZE_CHUNK = 1024
#: Characters of texts tokenized in one call (besides at most ``_TOKENIZE_CHUNK`` texts).
_CHUNK_CHARS = 2_000_000
_TRUNCATION_LOCK = threading.Lock()

#: What a cache is keyed by: how the text was processed (e.g. a TokenizationSpec), and the text.
CacheKey = tuple[Hashable, str]


class TokenCache:
    """A least-recently-used map ``(spec, text) -> token ids``, bounded in tokens.

    Any per-text array can be cached the same way (``tuning="head"`` keeps pooled features in
    one, bounded in values); the bound counts the arrays' lengths.

    Parameters
    ----------
    max_tokens : int, default=MAX_CACHED_TOKENS
        Tokens kept before the least recently used texts are evicted.
    """

    def __init__(self, max_tokens: int = MAX_CACHED_TOKENS) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[CacheKey, np.ndarray] = OrderedDict()
        self._n_tokens = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def n_tokens(self) -> int:
        """Tokens held now."""
        return self._n_tokens

    def get(self, key: CacheKey) -> np.ndarray | None:
        """Return the ids cached for ``key`` (and mark them recently used), or None."""
        with self._lock:
            ids = self._entries.get(key)
            if ids is not None:
                self._entries.move_to_end(key)
            return ids

    def put(self, key: CacheKey, ids: np.ndarray) -> None:
        """Cache ``ids`` for ``key``, evicting the oldest entries beyond ``max_tokens``."""
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = ids
            self._n_tokens += ids.size
            while self._n_tokens > self.max_tokens and self._entries:
                _, old = self._entries.popitem(last=False)
                self._n_tokens -= old.size


def _encodable(text: str) -> str:
    """Replace lone surrogates, which UTF-8 cannot encode and tokenizers reject, with U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 with surrogatepass joins valid surrogate pairs; 'replace' marks the lone ones.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _fallback_id(tokenizer: Any) -> int:
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0


def leading_special_tokens(tokenizer: Any) -> list[int]:
    """The ids a tokenizer puts before every text (a BOS token for Llama or OPT; none for GPT-2)."""
    with_specials = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    start = len(with_specials) - len(plain)
    if start >= 0 and with_specials[start:] == plain:
        return with_specials[:start]
    return []


def tokens_in_context(tokenizer: Any, context: str, word: str) -> list[int]:
    """The tokens of ``word`` as they follow ``context``: tokenized together, then split.

    A tokenizer may merge or mark a word differently at the start of a text (SentencePiece's
    word-start marker, BPE merges across the boundary), so a label word is tokenized after the
    prompt it follows, keeping the tokens past the prompt's own. Where the prompt's tokens are
    not a prefix of the whole (the boundary merged), the word is tokenized on its own.
    """
    before = list(tokenizer(context, add_special_tokens=False)["input_ids"])
    whole = list(tokenizer(context + word, add_special_tokens=False)["input_ids"])
    if whole[: len(before)] == before and len(whole) > len(before):
        return whole[len(before) :]
    return list(tokenizer(word, add_special_tokens=False)["input_ids"])


def special_frame(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after every text it encodes with special tokens.

    GPT-2 puts none, Llama and OPT a BOS before, BERT ``[CLS]`` before and ``[SEP]`` after.
    """
    with_specials = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    for start in range(len(with_specials) - len(plain) + 1):
        if with_specials[start : start + len(plain)] == plain:
            return with_specials[:start], with_specials[start + len(plain) :]
    return [], []


def _batches(texts: Sequence[str]) -> Iterator[list[int]]:
    """Positions of ``texts`` in groups of at most ``_TOKENIZE_CHUNK`` texts and ~2M chars."""
    group: list[int] = []
    chars = 0
    for i, text in enumerate(texts):
        if group and (len(group) == _TOKENIZE_CHUNK or chars + len(text) > _CHUNK_CHARS):
            yield group
            group, chars = [], 0
        group.append(i)
        chars += len(text)
    if group:
        yield group


def _ids(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


def _ends_needed(spec: TokenizationSpec, room: int) -> tuple[int | None, int]:
    """Tokens to read from the start and the end of a long text's body (None: all of it)."""
    if spec.truncation == "head":
        return room + 1, 0
    if spec.truncation == "tail":
        return 0, room + 1
    if spec.truncation == "head+tail":
        head, tail = head_tail_counts(room)
        return head + 1, tail
    return None, 0


class _Frame:
    """What every row of a spec holds around the text: ``lead + body + trail``, and its room."""

    def __init__(self, tokenizer: Any, spec: TokenizationSpec) -> None:
        prefix, suffix = spec.template_parts
        self.specials = _ids(leading_special_tokens(tokenizer))
        if spec.template is None:
            # The tokenizer adds its special tokens itself; they frame every row.
            lead, trail = special_frame(tokenizer)
            self.lead, self.trail = _ids(lead), _ids(trail)
        else:
            self.lead = np.concatenate([self.specials, _ids(_plain(tokenizer, [prefix])[0])])
            self.trail = _ids(_plain(tokenizer, [suffix])[0])
        self.room = spec.max_length - len(self.lead) - len(self.trail)
        self.spec = spec

    def cut(self, body: np.ndarray) -> np.ndarray:
        if self.room < 1:
            what = (
                "special tokens"
                if self.spec.template is None
                else f"template {self.spec.template!r}"
            )
            raise ValueError(
                f"The {what} alone take {len(self.lead) + len(self.trail)} tokens, "
                f"leaving no room for the text within max_length={self.spec.max_length}. Use a "
                f"larger max_length or a shorter template."
            )
        return cut(self.lead, body, self.trail, self.room, self.spec)


def _plain(tokenizer: Any, texts: list[str], specials: bool = False) -> list[list[int]]:
    if not texts:
        return []
    batch = tokenizer(texts, add_special_tokens=specials, padding=False, verbose=False)
    return list(batch["input_ids"])


def _truncated_by_tokenizer(
    tokenizer: Any, texts: list[str], spec: TokenizationSpec
) -> list[list[int]]:
    # The tokenizer truncates (special tokens kept); its truncation side is per object, so a
    # lock keeps two threads from seeing each other's setting.
    with _TRUNCATION_LOCK:
        side = getattr(tokenizer, "truncation_side", "right")
        tokenizer.truncation_side = spec.truncation_side
        try:
            batch = tokenizer(texts, truncation=True, max_length=spec.max_length, padding=False)
        finally:
            tokenizer.truncation_side = side
    return list(batch["input_ids"])


def _whole(tokenizer: Any, texts: list[str], frame: _Frame) -> list[np.ndarray | None]:
    """Each text's row if it fits in ``max_length`` (exactly as the package always made it)."""
    spec = frame.spec
    if not texts:
        return []
    if spec.template is None:
        if spec.truncation in ("head", "tail"):
            # A text that does not fit is cut by the tokenizer itself, as it always was.
            return [_ids(ids) for ids in _truncated_by_tokenizer(tokenizer, texts, spec)]
        encoded = [_ids(ids) for ids in _plain(tokenizer, texts, specials=True)]
    else:
        # The prompt is encoded whole (BPE merges across the template's boundaries as in any
        # other use of the model), after the tokens the tokenizer puts before every text.
        prefix, suffix = spec.template_parts
        whole = _plain(tokenizer, [prefix + text + suffix for text in texts])
        encoded = [np.concatenate([frame.specials, _ids(ids)]) for ids in whole]
    return [ids if len(ids) <= spec.max_length else None for ids in encoded]


def _encode(tokenizer: Any, texts: list[str], spec: TokenizationSpec) -> list[np.ndarray]:
    frame = _Frame(tokenizer, spec)
    rows: list[np.ndarray | None] = [None] * len(texts)
    short = [i for i, text in enumerate(texts) if len(text) <= PIECE_CHARS]
    for i, ids in zip(short, _whole(tokenizer, [texts[i] for i in short], frame), strict=True):
        rows[i] = ids
    # Short texts that do not fit: their own tokens, cut.
    cut_short = [i for i in short if rows[i] is None]
    for i, body in zip(cut_short, _plain(tokenizer, [texts[i] for i in cut_short]), strict=True):
        rows[i] = frame.cut(_ids(body))
    for i, text in enumerate(texts):
        if len(text) <= PIECE_CHARS:
            continue
        body, complete = encode_ends(tokenizer, text, *_ends_needed(spec, frame.room))
        if complete and len(frame.lead) + len(body) + len(frame.trail) <= spec.max_length:
            rows[i] = _whole(tokenizer, [text], frame)[0]
        rows[i] = frame.cut(body) if rows[i] is None else rows[i]
    return [as_window_rows(ids, spec) for ids in rows]  # type: ignore[arg-type]


def tokenize(tokenizer: Any, texts: Sequence[str], spec: TokenizationSpec) -> list[np.ndarray]:
    """Tokenize ``texts`` as ``spec`` says, without padding.

    A text that fits in ``max_length`` gives the same ids whatever ``spec.truncation`` says;
    one that does not is cut as :mod:`sklearn_gpt2.text.truncation` describes, inside the text
    (the template and the tokenizer's special tokens are kept). A text with no tokens (the
    empty string, for a tokenizer that adds no special tokens) becomes a single EOS token, so
    every text has a real token to be classified from.

    Parameters
    ----------
    tokenizer : Hugging Face tokenizer
        The checkpoint's tokenizer.
    texts : sequence of str
        Texts to encode.
    spec : TokenizationSpec
        Maximum length, truncation and template.

    Returns
    -------
    token_ids : list of ndarray of int32
        One 1-D array per text; for ``truncation="window"`` one 2-D array per text, with a
        row per window (see :func:`sklearn_gpt2.text.truncation.text_rows`).
    """
    fallback = as_window_rows(_ids([_fallback_id(tokenizer)]), spec)
    encoded: list[np.ndarray] = []
    for group in _batches(texts):
        chunk = [_encodable(texts[i]) for i in group]
        encoded.extend(ids if ids.size else fallback for ids in _encode(tokenizer, chunk, spec))
    return encoded


class CachedTokenizer:
    """A tokenizer bound to a :class:`TokenCache`: each (spec, text) is tokenized once.

    Parameters
    ----------
    tokenizer : Hugging Face tokenizer
        The checkpoint's tokenizer.
    cache : TokenCache or None
        Where to keep token ids; None tokenizes every time.
    """

    def __init__(self, tokenizer: Any, cache: TokenCache | None) -> None:
        self.tokenizer = tokenizer
        self.cache = cache

    def __call__(self, texts: Sequence[str], spec: TokenizationSpec) -> list[np.ndarray]:
        """Token ids of ``texts``, reusing those of texts seen before with the same spec."""
        if self.cache is None:
            return tokenize(self.tokenizer, texts, spec)
        result: list[np.ndarray | None] = [self.cache.get((spec, text)) for text in texts]
        missing = [i for i, ids in enumerate(result) if ids is None]
        # Duplicated texts are tokenized once.
        unique_missing = list(dict.fromkeys(texts[i] for i in missing))
        fresh = dict(
            zip(unique_missing, tokenize(self.tokenizer, unique_missing, spec), strict=True)
        )
        for text, ids in fresh.items():
            self.cache.put((spec, text), ids)
        for i in missing:
            result[i] = fresh[texts[i]]
        return result  # type: ignore[return-value]  # every slot is filled now
