"""What both kinds of directory save share: staging, the manifest, reading listed files only.

A whole-model save (:mod:`.directory_codec`) and a save by reference (:mod:`.reference`) are
staged beside their target and swapped in atomically, carry the same manifest (the fields of
:func:`.state.saved_fields`, the parameters encoded once, the versions, every file's digest,
the manifest's own digest) and read only the files that manifest lists.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..runtime import Runtime
from .atomic_directory import replacing_directory
from .format import FORMAT_NAME, FORMAT_VERSION, MANIFEST, unlisted_entries
from .manifest import list_files, manifest_digest
from .state import (
    FittedState,
    check_classes,
    check_finite,
    decode_classes,
    decode_params,
    encode_params,
    library_versions,
    saved_fields,
)


def warn_callbacks_not_saved(estimator: Any) -> None:
    """Warn that ``callbacks`` (arbitrary objects) are not part of a saved directory."""
    if estimator.callbacks is not None:
        warnings.warn(
            "callbacks are not saved by save_pretrained; set them again with "
            "set_params(callbacks=...) before refitting a loaded classifier.",
            UserWarning,
            stacklevel=5,
        )


def json_params(estimator: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The estimator's parameters as the manifest holds them (refused before any writing)."""
    return encode_params(estimator.get_params(deep=False), objects=False)


@contextlib.contextmanager
def saving_into(directory: str | Path) -> Iterator[Path]:
    """A staging directory that replaces ``directory`` once the block has written into it.

    Until then, and if the block fails, an earlier save in ``directory`` stays as it was.
    Files of that earlier save that the package did not write (a log) are carried over.
    """
    directory = Path(directory)
    with replacing_directory(directory, keep=unlisted_entries(directory)) as staging:
        yield staging


def write_manifest(
    directory: Path,
    fitted: FittedState,
    params: tuple[dict[str, Any], dict[str, str]],
    **more: Any,
) -> None:
    """Write the manifest of ``fitted`` into a save being staged, listing every file in it.

    ``params`` are the encoded hyperparameters (:func:`json_params`); ``more`` adds fields of
    a kind of save (``base`` for a save by reference). The manifest carries the digest of its
    own fields.
    """
    encoded, wrapped = params
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **saved_fields(fitted),
        "params": encoded,
        "wrapped_params": wrapped,
        "versions": library_versions(),
        "files": list_files(directory),
        **more,
    }
    manifest["digest"] = manifest_digest(manifest)
    (directory / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"
    )


def load_tensors_file(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file, or a ValueError naming it."""
    try:
        tensors = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(
            f"{path} is corrupt or incomplete (not a readable safetensors file: {error})."
        ) from None
    check_finite(tensors, str(path))
    return tensors


@contextlib.contextmanager
def listed_files_only(directory: Path, names: list[str]) -> Iterator[Path]:
    """A scratch directory holding copies of just ``names``: loaders see no stray file."""
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            shutil.copyfile(directory / name, Path(scratch) / name)
        yield Path(scratch)


@contextlib.contextmanager
def blame(what: str) -> Iterator[None]:
    """Turn a loader's deep exception into one that names the file at fault."""
    try:
        yield
    except Exception as error:
        raise ValueError(f"{what} could not be read (corrupt or incomplete): {error}") from error


def estimator_from_manifest(
    cls: type, directory: Path, manifest: dict[str, Any]
) -> tuple[Any, np.ndarray, Runtime]:
    """A new estimator with the manifest's (checked) parameters, its classes and its runtime."""
    params = decode_params(manifest["params"], manifest.get("wrapped_params") or {})
    if manifest.get("estimator", cls.__name__) != cls.__name__:
        raise ValueError(
            f"{directory} holds a {manifest['estimator']}, not a {cls.__name__}; load it with "
            f"{manifest['estimator']}.from_pretrained."
        )
    unknown = set(params) - set(cls._get_param_names())  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(f"{directory / MANIFEST} names unknown parameters {sorted(unknown)}.")
    with blame(f"The 'classes' field of {directory / MANIFEST}"):
        classes = decode_classes(manifest["classes"])
        check_classes(classes)
    estimator = cls(**params)
    with blame(f"The 'params' field of {directory / MANIFEST}"):
        estimator._check_params()
    runtime, estimator.device, estimator.precision = Runtime.for_loading(
        str(params.get("device", "auto")), str(params.get("precision", "auto"))
    )
    return estimator, classes, runtime
