"""``save_pretrained`` / ``from_pretrained``: which kind of directory save, written or read.

A directory holds either the whole model (:mod:`.directory_codec`) or only what was trained,
with the identity of its base checkpoint (:mod:`.reference`); the manifest says which. Both
read the same manifest (:mod:`.format`) and check every file against it first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .atomic_directory import leftover_of
from .directory_codec import load_whole_directory, save_directory
from .format import check_saved_files, read_manifest
from .reference import load_by_reference, save_by_reference
from .state import warn_if_versions_differ


def save(estimator: Any, directory: str | os.PathLike[str], base: str) -> Path:
    """Write ``estimator``: its whole model, or (``base="reference"``) only what it trained."""
    if base == "reference":
        return save_by_reference(estimator, directory)
    if base != "include":
        raise ValueError(f"base must be 'include' or 'reference'; got {base!r}.")
    return save_directory(estimator, directory)


def load(cls: type, directory: str | os.PathLike[str], base: str | os.PathLike[str] | None) -> Any:
    """Load a classifier written by :func:`save`; nothing is unpickled."""
    directory = Path(directory)
    if not directory.is_dir():
        leftover = leftover_of(directory)
        hint = (
            f" An interrupted save left the previous model in {leftover}; rename it to "
            f"{directory.name} to load it."
            if leftover is not None
            else ""
        )
        raise FileNotFoundError(f"{directory} is not a directory written by save_pretrained.{hint}")
    manifest = read_manifest(directory)
    check_saved_files(directory, manifest["files"])
    warn_if_versions_differ(manifest["versions"], f"The classifier in {directory}")
    if "base" in manifest:
        return load_by_reference(cls, directory, manifest, base)
    if base is not None:
        raise ValueError(
            f"{directory} holds its whole model (saved with base='include'); base= only tells "
            f"a save by reference (base='reference') where its base checkpoint is. Drop base=."
        )
    return load_whole_directory(cls, directory, manifest)
