"""The directory codec: a fitted state as safetensors weights, tokenizer files and a manifest.

Loading reads JSON, text and safetensors files only: nothing is unpickled, ``torch.load`` is
never called and transformers is told not to run remote code, so a directory from a stranger
cannot run code. Every file's size and SHA-256 are in the manifest, so a truncated or altered
file is reported by name before it is used; the manifest carries a digest of its own fields,
so an edited parameter is reported too, and only the files it lists are read. Saves are
atomic (see :mod:`.atomic_directory`). The manifest carries a format version; version 1
(sklearn-gpt2 0.1) directories are read too. A ``tuning="lora"`` classifier adds its adapters
(``adapter.safetensors``); a directory saved by reference (``base="reference"``, see
:mod:`.reference`) holds only what was trained and is read by that module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoTokenizer

from ..models.checkpoint import quiet_transformers
from ..runtime import Runtime
from .atomic_directory import leftover_of, replacing_directory
from .base_checkpoint import check_not_into_base, fitted_base, remember_base
from .state import (
    FORMAT_NAME,
    FORMAT_VERSION,
    FittedState,
    build_model,
    check_classes,
    check_finite,
    decode_classes,
    describe,
    encode_classes,
    library_versions,
    restore,
    warn_if_versions_differ,
)

#: The JSON file holding everything that is not weights or tokenizer.
MANIFEST = "sklearn_gpt2.json"
#: Tensors the saved model lacks (LoRA adapters), and only what was trained (saves by reference).
ADAPTER_FILE = "adapter.safetensors"
TRAINED_FILE = "trained.safetensors"


def file_digest(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file, as the manifest lists them."""
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            sha.update(chunk)
    return {"size": path.stat().st_size, "sha256": sha.hexdigest()}


def _params_to_json(params: dict[str, Any]) -> dict[str, Any]:
    encoded = {}
    for name, value in params.items():
        if name == "callbacks":
            value = None  # arbitrary objects: not saved (documented)
        elif name == "device" or isinstance(value, os.PathLike):
            value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        elif name == "random_state" and not (value is None or isinstance(value, Integral)):
            value = None  # a RandomState instance has no JSON form
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, dict) and not all(isinstance(key, str) for key in value):
            raise TypeError(
                f"save_pretrained stores {name} in JSON, whose keys are strings; "
                f"{name}={value!r} has other keys. Save with joblib, or use string labels."
            )
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"save_pretrained cannot store {name}={value!r} in JSON; use a plain number "
                f"or string, or save with joblib."
            ) from None
        encoded[name] = value
    return encoded


def warn_callbacks_not_saved(estimator: Any) -> None:
    """Warn that ``callbacks`` (arbitrary objects) are not part of a saved directory."""
    if estimator.callbacks is not None:
        warnings.warn(
            "callbacks are not saved by save_pretrained; set them again with "
            "set_params(callbacks=...) before refitting a loaded classifier.",
            UserWarning,
            stacklevel=4,
        )


@contextlib.contextmanager
def saving_into(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """A staging directory that replaces ``directory`` once the block has written into it.

    Until then, and if the block fails, an earlier save in ``directory`` stays as it was.
    Files of that earlier save that the package did not write (a log) are carried over.
    """
    directory = Path(directory)
    with replacing_directory(directory, keep=_unlisted_files(directory)) as staging:
        yield staging


def write_manifest(
    directory: Path, fitted: FittedState, params: dict[str, Any], **more: Any
) -> None:
    """Write the manifest of ``fitted`` into a save being staged, listing every file in it.

    ``params`` are the JSON-ready hyperparameters; ``more`` adds fields of a kind of save
    (``base`` for a save by reference). The manifest carries the digest of its own fields.
    """
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": fitted.estimator,
        "head": fitted.head,
        "params": params,
        "classes": encode_classes(fitted.classes),
        "seed": fitted.seed,
        "extra": fitted.extra,
        "history": fitted.history,
        "versions": library_versions(),
        "files": {path.name: file_digest(path) for path in sorted(directory.iterdir())},
        **more,
    }
    manifest["digest"] = manifest_digest(manifest)
    (directory / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"
    )


def manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of every manifest field but ``digest`` itself, in canonical JSON."""
    fields = {name: value for name, value in manifest.items() if name != "digest"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _unlisted_files(directory: Path) -> frozenset[str]:
    """What an earlier save's directory holds that the package did not write (kept on resave)."""
    if not directory.is_dir():
        return frozenset()
    listed: set[str] = {MANIFEST}
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        listed |= set(json.loads((directory / MANIFEST).read_text(encoding="utf-8"))["files"])
    return frozenset(path.name for path in directory.iterdir() if path.name not in listed)


def save_directory(estimator: Any, directory: str | os.PathLike[str]) -> Path:
    """Write a fitted classifier as safetensors weights, tokenizer files and a JSON manifest."""
    check_not_into_base(estimator, directory)
    warn_callbacks_not_saved(estimator)
    params = _params_to_json(estimator.get_params(deep=False))  # fails before writing anything
    fitted = describe(estimator)
    with saving_into(directory) as staging:
        with quiet_transformers():
            fitted.model.save_pretrained(staging)
            fitted.tokenizer.save_pretrained(staging)
        if fitted.adapter is not None:
            save_file(
                {k: v.contiguous() for k, v in fitted.adapter.items()}, staging / ADAPTER_FILE
            )
        write_manifest(staging, fitted, params, base_checkpoint=fitted_base(estimator))
    return Path(directory)


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


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {directory} is not a directory written by "
            f"GPT2SequenceClassifier.save_pretrained, or the save did not finish."
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
    return manifest


def check_files(directory: Path, files: dict[str, Any]) -> None:
    """Refuse a missing file, or one whose size or SHA-256 differs from the manifest's."""
    for name, expected in files.items():
        path = directory / Path(name).name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; the saved classifier is incomplete.")
        if not isinstance(expected, dict) or file_digest(path) != expected:
            raise ValueError(
                f"{path} is corrupt, incomplete or was modified after saving (its size or "
                f"SHA-256 differs from {MANIFEST}). Save the classifier again."
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


def _load_weights(directory: Path, listed: dict[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    if single.name in listed:
        shards = [single]
    elif index.name in listed:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = [directory / Path(name).name for name in sorted(set(weight_map.values()))]
        unlisted = [shard.name for shard in shards if shard.name not in listed]
        if unlisted:
            raise ValueError(f"{index} names weight files {MANIFEST} does not list: {unlisted}.")
    else:
        raise FileNotFoundError(f"{single} is missing; the saved classifier is incomplete.")
    weights: dict[str, torch.Tensor] = {}
    for shard in shards:
        weights.update(load_tensors_file(shard))
    return weights, str(shards[0] if len(shards) == 1 else index)


@contextlib.contextmanager
def _listed_files_only(directory: Path, names: list[str]) -> Iterator[Path]:
    """A scratch directory holding copies of just ``names``: loaders see no stray file."""
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            shutil.copyfile(directory / name, Path(scratch) / name)
        yield Path(scratch)


@contextlib.contextmanager
def _blame(what: str) -> Iterator[None]:
    """Turn a loader's deep exception into one that names the file at fault."""
    try:
        yield
    except Exception as error:
        raise ValueError(f"{what} could not be read (corrupt or incomplete): {error}") from error


def load_directory(
    cls: type, directory: str | os.PathLike[str], base: str | os.PathLike[str] | None = None
) -> Any:
    """Load a classifier written by :func:`save_directory`; nothing is unpickled."""
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
    manifest = _read_manifest(directory)
    check_files(directory, manifest["files"])
    warn_if_versions_differ(manifest["versions"], f"The classifier in {directory}")
    if "base" in manifest:
        from .reference import load_by_reference

        return load_by_reference(cls, directory, manifest, base)
    if base is not None:
        raise ValueError(
            f"{directory} holds its whole model (saved with base='include'); base= only tells "
            f"a save by reference (base='reference') where its base checkpoint is. Drop base=."
        )
    weights, weights_file = _load_weights(directory, manifest["files"])
    text_files = [
        name
        for name in sorted(manifest["files"])
        if not name.startswith("model") and name != ADAPTER_FILE
    ]
    tokenizer_files = [
        name for name in text_files if name not in ("config.json", "generation_config.json")
    ]
    with _listed_files_only(directory, text_files) as listed:
        with _blame(str(directory / "config.json")), quiet_transformers():
            config = AutoConfig.from_pretrained(
                listed, trust_remote_code=False, local_files_only=True
            )
        model = build_model(config, weights, weights_file, manifest["head"])
        with (
            _blame(f"The tokenizer files {', '.join(tokenizer_files)} in {directory}"),
            quiet_transformers(),
        ):
            tokenizer = AutoTokenizer.from_pretrained(
                listed, trust_remote_code=False, local_files_only=True
            )
    adapter = (
        load_tensors_file(directory / ADAPTER_FILE) if ADAPTER_FILE in manifest["files"] else None
    )
    estimator, classes, runtime = estimator_from_manifest(cls, directory, manifest)
    estimator._check_saved_model(model, classes, f"{directory / MANIFEST}", weights_file)
    params = manifest["params"]
    restore(
        estimator,
        FittedState(
            estimator=cls.__name__,
            params=params,
            classes=classes,
            seed=manifest["seed"],
            history=manifest["history"],
            head=manifest["head"],
            model=model,
            tokenizer=tokenizer,
            extra=manifest["extra"],
            adapter=adapter,
        ),
        runtime,
    )
    remember_base(estimator, manifest.get("base_checkpoint"))
    return estimator


def estimator_from_manifest(
    cls: type, directory: Path, manifest: dict[str, Any]
) -> tuple[Any, np.ndarray, Runtime]:
    """A new estimator with the manifest's (checked) parameters, its classes and its runtime."""
    params = manifest["params"]
    if manifest.get("estimator", cls.__name__) != cls.__name__:
        raise ValueError(
            f"{directory} holds a {manifest['estimator']}, not a {cls.__name__}; load it with "
            f"{manifest['estimator']}.from_pretrained."
        )
    unknown = set(params) - set(cls._get_param_names())  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(f"{directory / MANIFEST} names unknown parameters {sorted(unknown)}.")
    with _blame(f"The 'classes' field of {directory / MANIFEST}"):
        classes = decode_classes(manifest["classes"])
        check_classes(classes)
    estimator = cls(**params)
    with _blame(f"The 'params' field of {directory / MANIFEST}"):
        estimator._check_params()
    runtime, estimator.device, estimator.precision = Runtime.for_loading(
        str(params.get("device", "auto")), str(params.get("precision", "auto"))
    )
    return estimator, classes, runtime
