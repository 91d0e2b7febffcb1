"""Tokenize texts once per spec, without padding, into small integer arrays; cache them.

Texts are kept as one ``int32`` array each, never as one padded matrix of the whole input: a
batch is padded only to its own longest text, when it is collated. The cache is keyed by the
:class:`TokenizationSpec` and the text, so a grid search over ``max_length`` tokenizes each
text once per value, and two estimators on one checkpoint share what they both need.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from .spec import TokenizationSpec

#: Upper bound on the tokens kept per checkpoint cache; old entries are evicted first.
MAX_CACHED_TOKENS = 20_000_000
_TOKENIZE_CHUNK = 1024
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


def _fallback_id(tokenizer: Any) -> int:
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0


def _encode_plain(tokenizer: Any, texts: list[str], spec: TokenizationSpec) -> list[list[int]]:
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


def _encode_templated(tokenizer: Any, texts: list[str], spec: TokenizationSpec) -> list[list[int]]:
    # The prompt is encoded whole (BPE merges across the template's boundaries as it would in
    # any other use of the model); only a prompt that is too long is cut, inside the text. The
    # tokens the tokenizer puts before every text (a BOS) are kept and count towards the limit.
    prefix, suffix = spec.template_parts
    specials = leading_special_tokens(tokenizer)
    whole = tokenizer([prefix + text + suffix for text in texts], add_special_tokens=False)
    encoded: list[list[int]] = []
    for text, ids in zip(texts, whole["input_ids"], strict=True):
        if len(specials) + len(ids) <= spec.max_length:
            encoded.append(specials + list(ids))
            continue
        head, body, tail = tokenizer([prefix, text, suffix], add_special_tokens=False)["input_ids"]
        head = specials + list(head)
        room = spec.max_length - len(head) - len(tail)
        if room < 1:
            raise ValueError(
                f"The template {spec.template!r} alone takes {len(head) + len(tail)} tokens, "
                f"leaving no room for the text within max_length={spec.max_length}. Use a "
                f"larger max_length or a shorter template."
            )
        body = body[:room] if spec.truncation_side == "right" else body[-room:]
        encoded.append(list(head) + list(body) + list(tail))
    return encoded


def tokenize(tokenizer: Any, texts: Sequence[str], spec: TokenizationSpec) -> list[np.ndarray]:
    """Tokenize ``texts`` as ``spec`` says, without padding.

    A text with no tokens (the empty string, for a tokenizer that adds no special tokens)
    becomes a single EOS token, so every text has a real token to be classified from.

    Parameters
    ----------
    tokenizer : Hugging Face tokenizer
        The checkpoint's tokenizer.
    texts : sequence of str
        Texts to encode.
    spec : TokenizationSpec
        Maximum length, truncation side and template.

    Returns
    -------
    token_ids : list of ndarray of int32
    """
    encode = _encode_plain if spec.template is None else _encode_templated
    fallback = _fallback_id(tokenizer)
    encoded: list[np.ndarray] = []
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        chunk = [_encodable(text) for text in texts[start : start + _TOKENIZE_CHUNK]]
        for ids in encode(tokenizer, chunk, spec):
            encoded.append(np.asarray(ids if ids else [fallback], dtype=np.int32))
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
