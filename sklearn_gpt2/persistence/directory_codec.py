"""The whole-model directory save: safetensors weights, tokenizer files, a manifest; no pickle.

Loading reads JSON, text and safetensors files only: nothing is unpickled, ``torch.load`` is
never called and transformers is told not to run remote code, so a directory from a stranger
cannot run code. Every file's size and SHA-256 are in the manifest, so a truncated or altered
file is reported by name before it is used; the manifest carries a digest of its own fields,
so an edited parameter is reported too, and only the files it lists are read. Saves are
atomic (see :mod:`.atomic_directory`). Transformers opens the directory as a plain model; a
``tuning="lora"`` classifier adds its adapters as a peft adapter directory in ``adapter/``
(:mod:`.peft_layout`; sklearn-gpt2 0.2 wrote ``adapter.safetensors``, still read).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer

from ..models.checkpoint import quiet_transformers
from .base_checkpoint import check_not_into_base
from .directory_files import (
    blame,
    estimator_from_manifest,
    json_params,
    listed_files_only,
    load_tensors_file,
    saving_into,
    warn_callbacks_not_saved,
    write_manifest,
)
from .format import ADAPTER_FOLDER, LEGACY_ADAPTER_FILE, MANIFEST
from .peft_layout import read_adapter, write_adapter
from .state import build_model, describe, fitted_from_fields, restore

#: Files of a whole-model save that are neither weights nor tokenizer.
_NOT_TOKENIZER = ("config.json", "generation_config.json")


def save_directory(estimator: Any, directory: str | os.PathLike[str]) -> Path:
    """Write a fitted classifier as safetensors weights, tokenizer files and a JSON manifest."""
    check_not_into_base(estimator, directory)
    warn_callbacks_not_saved(estimator)
    params = json_params(estimator)  # fails before writing anything
    fitted = describe(estimator)
    with saving_into(directory) as staging:
        with quiet_transformers():
            fitted.model.save_pretrained(staging)
            fitted.tokenizer.save_pretrained(staging)
        if fitted.adapter is not None:
            mode = estimator._tuning_mode()
            head = mode.trained_tensors(estimator.module_)
            write_adapter(
                staging / ADAPTER_FOLDER,
                mode.peft_config(estimator, estimator.module_, str(fitted.base_checkpoint)),
                {**fitted.adapter, **{k: v for k, v in head.items() if "lora_" not in k}},
            )
        write_manifest(staging, fitted, params)
    return Path(directory)


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


def _adapter(directory: Path, listed: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The LoRA adapters of a whole-model save (peft's layout, or format 3's single file)."""
    if any(name.startswith(ADAPTER_FOLDER + "/") for name in listed):
        tensors = read_adapter(directory / ADAPTER_FOLDER)
        return {name: tensor for name, tensor in tensors.items() if "lora_" in name}
    if LEGACY_ADAPTER_FILE in listed:
        return load_tensors_file(directory / LEGACY_ADAPTER_FILE)
    return None


def load_whole_directory(cls: type, directory: Path, manifest: dict[str, Any]) -> Any:
    """Load a classifier whose directory holds its whole model (checked by the manifest)."""
    weights, weights_file = _load_weights(directory, manifest["files"])
    text_files = [
        name
        for name in sorted(manifest["files"])
        if "/" not in name and not name.startswith("model") and name != LEGACY_ADAPTER_FILE
    ]
    tokenizer_files = [name for name in text_files if name not in _NOT_TOKENIZER]
    with listed_files_only(directory, text_files) as listed:
        with blame(str(directory / "config.json")), quiet_transformers():
            config = AutoConfig.from_pretrained(
                listed, trust_remote_code=False, local_files_only=True
            )
        model = build_model(config, weights, weights_file, manifest["head"])
        with (
            blame(f"The tokenizer files {', '.join(tokenizer_files)} in {directory}"),
            quiet_transformers(),
        ):
            tokenizer = AutoTokenizer.from_pretrained(
                listed, trust_remote_code=False, local_files_only=True
            )
    adapter = _adapter(directory, manifest["files"])
    estimator, classes, runtime = estimator_from_manifest(cls, directory, manifest)
    estimator._check_saved_model(model, classes, f"{directory / MANIFEST}", weights_file)
    fitted = fitted_from_fields(
        manifest,
        estimator=cls.__name__,
        params=estimator.get_params(deep=False),
        classes=classes,
        model=model,
        tokenizer=tokenizer,
        adapter=adapter,
    )
    restore(estimator, fitted, runtime)
    return estimator
