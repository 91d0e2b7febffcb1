"""The saved classifier's format, without torch: names, versions, and the manifest reader.

Everything here needs only the standard library, so a saved directory's manifest (its
parameters, classes, history, library versions and the checksum of every file) can be read
and verified by any tool, the torch-free ONNX runtime included, without importing torch,
skorch or transformers.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

from .manifest import check_files, listed_name, manifest_digest

#: The name both formats (pickle state, directory manifest) carry.
FORMAT_NAME = "sklearn-gpt2-classifier"
#: 1: sklearn-gpt2 0.1. 2: the manifest digests itself. 3 (0.2): training modes (adapter
#: tensors, saves by reference). 4: LoRA adapters in peft's layout; parameters encoded once.
FORMAT_VERSION = 4

#: The JSON file holding everything that is not weights or tokenizer.
MANIFEST = "sklearn_gpt2.json"
#: Only what was trained (a save by reference of a ``tuning="head"`` model).
TRAINED_FILE = "trained.safetensors"
#: LoRA adapters of format 3 (sklearn-gpt2 0.2), still read.
LEGACY_ADAPTER_FILE = "adapter.safetensors"
#: Where a whole-model save keeps its LoRA adapters, as a peft adapter directory (a folder:
#: transformers would take adapter files beside ``config.json`` for the model itself).
ADAPTER_FOLDER = "adapter"
#: The two files of a peft adapter directory.
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"

_MANIFEST_FIELDS = {
    "format": str,
    "format_version": int,
    "params": dict,
    "classes": dict,
    "seed": int,
    "head": str,
    "extra": dict,
    "history": list,
    "versions": dict,
    "files": dict,
}


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a saved classifier, checked: format, fields, version and own digest."""
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {directory} is not a directory written by "
            f"save_pretrained, or the save did not finish."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is corrupt or incomplete (not valid JSON: {error}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a sklearn-gpt2 manifest (its 'format' is wrong).")
    if manifest.get("format_version") == 1 and isinstance(manifest.get("last_token_pooling"), bool):
        # sklearn-gpt2 0.1 wrote sequence classifiers only, with this one extra field.
        manifest["head"] = "sequence-classification"
        manifest["extra"] = {"last_token_pooling": manifest.pop("last_token_pooling")}
    for field, kind in _MANIFEST_FIELDS.items():
        if not isinstance(manifest.get(field), kind):
            raise ValueError(
                f"{path} is corrupt: field {field!r} is missing or not a {kind.__name__}."
            )
    if manifest["format_version"] > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in format version {manifest['format_version']}, newer than "
            f"this sklearn-gpt2 reads ({FORMAT_VERSION}); upgrade sklearn-gpt2."
        )
    # Version 1 (sklearn-gpt2 0.1) manifests carry no digest of their own; later ones must.
    if manifest["format_version"] >= 2 and manifest.get("digest") != manifest_digest(manifest):
        raise ValueError(
            f"{path} was modified after saving: its fields do not match its own SHA-256 "
            f"digest. Editing the manifest would change the model silently; save the "
            f"classifier again instead (with set_params for new parameters)."
        )
    for name in manifest["files"]:
        try:
            listed_name(name)
        except ValueError as error:
            raise ValueError(f"{path} is corrupt: {error}.") from None
    return manifest


def check_saved_files(directory: Path, files: dict[str, Any]) -> None:
    """Refuse a missing file, or one whose size or SHA-256 differs from the manifest's."""
    check_files(
        directory, files, MANIFEST, what="saved classifier", remedy="Save the classifier again."
    )


def unlisted_entries(directory: Path) -> frozenset[str]:
    """What an earlier save's directory holds that the package did not write (kept on resave)."""
    if not directory.is_dir():
        return frozenset()
    listed: set[str] = {MANIFEST}
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        names = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))["files"]
        listed |= {PurePosixPath(name).parts[0] for name in names}
    return frozenset(path.name for path in directory.iterdir() if path.name not in listed)
