"""Rebuild a saved tokenizer from its files' bytes in memory, without writing them to disk.

Loading a pickle must work where no file can be written (a file-size limit, a read-only
temporary folder). A fast tokenizer's ``tokenizer.json`` holds its whole pipeline and
``tokenizer_config.json`` its class and special tokens, which is all ``from_pretrained``
reads from a directory of those two files; the tokenizer is built from them as it would be.
"""

from __future__ import annotations

import json
from typing import Any

from tokenizers import Tokenizer
from transformers import AddedToken, PreTrainedTokenizerFast
from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

from ..models.checkpoint import quiet_transformers

#: The files a fast tokenizer is saved as; anything else is read from disk, as before.
_FAST_FILES = frozenset({"tokenizer.json", "tokenizer_config.json"})
#: Config fields that only ``from_pretrained`` interprets (remote code, old layouts).
_NEEDS_FROM_PRETRAINED = frozenset({"auto_map", "init_inputs"})


def tokenizer_from_memory(files: dict[str, bytes]) -> Any | None:
    """The tokenizer saved as ``files`` (name -> bytes), or None if it needs other files."""
    if set(files) != _FAST_FILES:
        return None
    config = json.loads(files["tokenizer_config.json"])
    if not isinstance(config, dict) or _NEEDS_FROM_PRETRAINED & set(config):
        return None
    name = config.pop("tokenizer_class", None)
    cls = tokenizer_class_from_name(name) if isinstance(name, str) else PreTrainedTokenizerFast
    if cls is None or not issubclass(cls, PreTrainedTokenizerFast):
        return None
    # What from_pretrained does to a saved config before building the tokenizer.
    if "additional_special_tokens" in config and not config.get("extra_special_tokens"):
        config["extra_special_tokens"] = config.pop("additional_special_tokens")
    added = config.pop("added_tokens_decoder", None) or {}
    config = cls.convert_added_tokens(config, save=False)
    config["added_tokens_decoder"] = {
        int(index): AddedToken(**token) if isinstance(token, dict) else token
        for index, token in added.items()
    }
    backend = Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
    with quiet_transformers():
        return cls(tokenizer_object=backend, **config)
