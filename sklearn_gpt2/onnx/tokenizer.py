"""A ``tokenizers.Tokenizer`` behind the Hugging Face call interface, without transformers.

:func:`sklearn_gpt2.text.tokenize.tokenize` calls a tokenizer as transformers' fast
tokenizers are called (``tokenizer(texts, truncation=True, max_length=n)["input_ids"]``, a
``truncation_side`` attribute, ``eos_token_id``). A fast tokenizer of transformers is a thin
layer over a ``tokenizers.Tokenizer``, which it configures on each call exactly as this
adapter does, so the same ``tokenizer.json`` gives the same token ids with or without
transformers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer


class JsonTokenizer:
    """The tokenizer of a ``tokenizer.json`` file, called like a transformers tokenizer.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        The tokenizer (its own truncation and padding settings are ignored).
    eos_token_id : int or None
        Its end-of-text id.
    """

    def __init__(self, tokenizer: Tokenizer, eos_token_id: int | None) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id = eos_token_id
        self.truncation_side = "right"
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path, eos_token_id: int | None) -> JsonTokenizer:
        """Load ``tokenizer.json``."""
        return cls(Tokenizer.from_file(str(path)), eos_token_id)

    @classmethod
    def from_str(cls, text: str, eos_token_id: int | None) -> JsonTokenizer:
        """Load the contents of a ``tokenizer.json``."""
        return cls(Tokenizer.from_str(text), eos_token_id)

    def __call__(
        self,
        texts: str | Sequence[str],
        *,
        truncation: bool = False,
        max_length: int | None = None,
        padding: bool = False,
        add_special_tokens: bool = True,
        verbose: bool = True,
    ) -> dict[str, Any]:
        """Token ids of ``texts`` (``{"input_ids": ...}``), as a fast tokenizer returns them.

        Parameters
        ----------
        texts : str or sequence of str
            One text (ids of it) or several (a list of ids per text).
        truncation : bool, default=False
            Cut texts to ``max_length`` tokens (special tokens included), at the end that
            ``truncation_side`` names.
        max_length : int or None, default=None
            The limit of ``truncation``.
        padding : bool, default=False
            Must be False: texts are padded per batch, later.
        add_special_tokens : bool, default=True
            Add the tokenizer's special tokens (BERT's ``[CLS]`` and ``[SEP]``).
        verbose : bool, default=True
            Accepted as transformers does (it only silences a warning about long texts,
            which this tokenizer never gives).
        """
        if padding:
            raise ValueError("JsonTokenizer does not pad; batches are padded when they are run.")
        if truncation and max_length is None:
            raise ValueError("truncation=True needs max_length.")
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        # The settings live in the shared Tokenizer object: one call at a time sets and uses them.
        with self._lock:
            self.tokenizer.no_padding()
            if truncation:
                # What transformers' fast tokenizers set before each truncating call.
                self.tokenizer.enable_truncation(
                    max_length, stride=0, strategy="longest_first", direction=self.truncation_side
                )
            else:
                self.tokenizer.no_truncation()
            encodings = self.tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens)
        ids = [encoding.ids for encoding in encodings]
        return {"input_ids": ids[0] if single else ids}
