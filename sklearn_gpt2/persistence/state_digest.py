"""A SHA-256 digest over a pickle state, so a damaged pickle is refused instead of loaded.

The digest covers every field of the state (hyperparameters, classes, weights, config,
tokenizer files, extra state, adapters) in a canonical encoding that does not depend on how
the pickle was written: joblib, plain pickle and skops give back the same builtins and arrays,
and so the same digest. ``seal`` adds it when saving; ``check_digest`` verifies it before
anything is built from the state. States written before digests existed (sklearn-gpt2 0.2
and earlier) carry neither field and load as before; a state that carries either field must
carry both, so a damaged field name cannot pass a sealed state off as an old one.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import numpy as np

#: The field holding the digest, and the field that says the state was sealed with one.
DIGEST_FIELD = "sha256"
SEALED_FIELD = "sealed"


def _feed(sha: Any, value: Any) -> None:
    """Add ``value`` to ``sha`` in a canonical, type-tagged encoding."""
    if value is None:
        sha.update(b"N")
    elif isinstance(value, (bool, np.bool_)):
        sha.update(b"T" if value else b"F")
    elif isinstance(value, (int, np.integer)):
        sha.update(b"i%d;" % int(value))
    elif isinstance(value, (float, np.floating)):
        sha.update(b"f" + struct.pack("<d", float(value)))
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        sha.update(b"s%d:" % len(data) + data)
    elif isinstance(value, (bytes, bytearray)):
        sha.update(b"b%d:" % len(value) + bytes(value))
    elif isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            sha.update(b"o")
            _feed(sha, value.tolist())
            return
        sha.update(f"a{value.dtype.str}{value.shape}:".encode())
        sha.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8).data)
    elif isinstance(value, (list, tuple)):
        sha.update(b"l%d:" % len(value))
        for item in value:
            _feed(sha, item)
    elif isinstance(value, dict):
        sha.update(b"d%d:" % len(value))
        for key in sorted(value, key=repr):
            _feed(sha, key)
            _feed(sha, value[key])
    else:
        # Arbitrary objects (callbacks, a RandomState) do not change what the model predicts.
        sha.update(b"?" + type(value).__qualname__.encode())


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 of every field of ``state`` but the digest itself."""
    sha = hashlib.sha256()
    _feed(sha, {name: value for name, value in state.items() if name != DIGEST_FIELD})
    return sha.hexdigest()


def seal(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with its digest added."""
    state[SEALED_FIELD] = True
    state[DIGEST_FIELD] = state_digest(state)
    return state


def check_digest(state: dict[str, Any], what: str) -> None:
    """Refuse a sealed state whose digest is missing or does not match its contents."""
    if DIGEST_FIELD not in state and SEALED_FIELD not in state:
        return  # written before digests existed
    if state.get(DIGEST_FIELD) != state_digest(state) or state.get(SEALED_FIELD) is not True:
        raise ValueError(
            f"{what} is corrupt: its contents do not match the SHA-256 digest saved with them "
            f"(the file was damaged or altered after saving), so it could load as a different "
            f"model. Save the classifier again from a good copy, or use save_pretrained's "
            f"directory format, which also names the damaged file."
        )
