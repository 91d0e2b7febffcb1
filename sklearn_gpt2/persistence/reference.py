"""Saving by reference: only what a ``"head"`` or ``"lora"`` fit trained, plus its base's identity.

``save_pretrained(directory, base="reference")`` writes what was trained and the manifest,
which names the base checkpoint and holds a SHA-256 fingerprint of its pretrained weights: a
few MB instead of the whole model. A LoRA model's adapters and head are a peft adapter
directory (``adapter_config.json`` + ``adapter_model.safetensors``: plain peft loads them
onto the base); a head-mode model's head is ``trained.safetensors``. Loading
rebuilds the model from the base checkpoint, refuses a base whose weights differ, and names
the base it needs when it cannot be loaded. Nothing is unpickled.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..models.checkpoint import load_checkpoint
from ..models.sequence import head_name
from .base_checkpoint import check_not_into_base, fitted_base, remember_base
from .base_checkpoint import location as base_location
from .directory_files import (
    estimator_from_manifest,
    json_params,
    load_tensors_file,
    saving_into,
    warn_callbacks_not_saved,
    write_manifest,
)
from .format import MANIFEST, PEFT_CONFIG, TRAINED_FILE
from .peft_layout import read_adapter, write_adapter
from .state import check_tuning_unchanged, describe, fitted_from_fields, restore


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of a model's pretrained weights: every tensor but the head's and the adapters'.

    Adapter-wrapped layers (``...c_attn.base_layer.weight``) count under their plain names, so
    a LoRA model and its base checkpoint have the same fingerprint.
    """
    skip = head_name(model) + "."
    sha = hashlib.sha256()
    for name, tensor in sorted(
        (name.replace(".base_layer.", "."), tensor)
        for name, tensor in model.state_dict().items()
        if "lora_" not in name and not name.startswith(skip)
    ):
        sha.update(name.encode())
        sha.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy())
    return sha.hexdigest()


#: Config fields a fit sets itself (the head's labels) or that only record provenance (a
#: save_pretrained writes its model class into ``architectures``).
_OWN_CONFIG_FIELDS = frozenset(
    {
        "id2label",
        "label2id",
        "num_labels",
        "_name_or_path",
        "transformers_version",
        "architectures",
    }
)


def text_sha256(tokenizer: Any, config: Any) -> str:
    """SHA-256 of what turns text into the base's inputs: tokenizer and model config.

    The weights' fingerprint alone would accept a base whose vocabulary, merges, pad token or
    config (say, ``layer_norm_epsilon``) changed, and so predict differently.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Truncation and padding are call settings the tokenizer keeps from its last use.
        state = json.loads(backend.to_str())
        described = json.dumps(
            {k: v for k, v in state.items() if k not in ("truncation", "padding")},
            sort_keys=True,
        )
    else:
        described = json.dumps(sorted(tokenizer.get_vocab().items()))
    fields = {k: v for k, v in config.to_dict().items() if k not in _OWN_CONFIG_FIELDS}
    sha = hashlib.sha256(described.encode())
    sha.update(json.dumps([tokenizer.pad_token, tokenizer.padding_side]).encode())
    sha.update(json.dumps(fields, sort_keys=True, default=str).encode())
    return sha.hexdigest()


def save_by_reference(estimator: Any, directory: str | os.PathLike[str]) -> Path:
    """Write only what ``estimator`` trained, with its base checkpoint's name and fingerprint."""
    check_tuning_unchanged(estimator)
    mode = estimator._tuning_mode()
    if not mode.saves_by_reference:
        raise ValueError(
            f"save_pretrained(base='reference') saves only what was trained, for "
            f"tuning='head' or 'lora'; this classifier has tuning={estimator.tuning!r}, which "
            f"trains every weight. Use save_pretrained(directory)."
        )
    check_not_into_base(estimator, directory)
    warn_callbacks_not_saved(estimator)
    params = json_params(estimator)
    model = estimator.module_.model
    # The base this model was fitted on: model_name_or_path may name another one by now.
    base = {
        "model_name_or_path": fitted_base(estimator),
        "weights_sha256": weights_sha256(model),
        "text_sha256": text_sha256(estimator.tokenizer_, model.config),
        "model_type": model.config.model_type,
    }
    with saving_into(directory) as staging:
        tensors = {
            k: v.detach().cpu().contiguous()
            for k, v in mode.trained_tensors(estimator.module_).items()
        }
        if hasattr(mode, "peft_config"):
            config = mode.peft_config(estimator, estimator.module_, base["model_name_or_path"])
            write_adapter(staging, config, tensors)
        else:
            save_file(tensors, staging / TRAINED_FILE)
        write_manifest(staging, describe(estimator, with_model=False), params, base=base)
    return Path(directory)


def load_by_reference(
    cls: type, directory: Path, manifest: dict[str, Any], base: str | os.PathLike[str] | None
) -> Any:
    """Rebuild a classifier saved by reference on its base checkpoint (checked by fingerprint)."""
    saved = manifest["base"]
    if not isinstance(saved, dict) or not isinstance(saved.get("weights_sha256"), str):
        raise ValueError(f"{directory / MANIFEST} is corrupt: its 'base' field is malformed.")
    expected_name, expected_sha = str(saved.get("model_name_or_path")), saved["weights_sha256"]
    location = os.fspath(base) if base is not None else expected_name
    needs = (
        f"{directory} holds only what was trained (saved with base='reference'); it needs its "
        f"base checkpoint {expected_name!r} (weights SHA-256 {expected_sha[:16]}...)"
    )
    manifest = {
        **manifest,
        "params": {**manifest["params"], "model_name_or_path": location},
        "wrapped_params": {
            k: v
            for k, v in (manifest.get("wrapped_params") or {}).items()
            if k != "model_name_or_path"
        },
    }
    estimator, classes, runtime = estimator_from_manifest(cls, directory, manifest)
    try:
        checkpoint = load_checkpoint(location)
        model = checkpoint.fresh_model(
            manifest["head"],
            num_labels=len(classes),
            id2label={index: str(label) for index, label in enumerate(classes)},
        )
    except OSError as error:
        raise FileNotFoundError(
            f"{needs}, which could not be loaded from {location!r}. Pass "
            f"from_pretrained(directory, base=...) with where that checkpoint is now.\n{error}"
        ) from error
    except ValueError as error:  # its weights file is truncated, corrupt or not finite
        raise ValueError(
            f"{needs}, but the one at {location!r} cannot be used. {error} Or pass "
            f"from_pretrained(directory, base=...) with an intact copy of that checkpoint."
        ) from None
    actual = weights_sha256(model)
    if actual != expected_sha:
        raise ValueError(
            f"{needs}, but the checkpoint at {location!r} has different weights (SHA-256 "
            f"{actual[:16]}...). Load it with the base it was trained on."
        )
    expected_text = saved.get("text_sha256")  # absent from the first saves by reference
    if (
        expected_text is not None
        and text_sha256(checkpoint.tokenizer, model.config) != expected_text
    ):
        raise ValueError(
            f"{needs}, but the checkpoint at {location!r} has the same weights with a "
            f"different tokenizer or model config, which would change predictions. Load it "
            f"with the base it was trained on."
        )
    model.eval()
    tensors = (
        read_adapter(directory)
        if PEFT_CONFIG in manifest["files"]
        else load_tensors_file(directory / TRAINED_FILE)
    )
    fitted = fitted_from_fields(
        manifest,
        estimator=cls.__name__,
        params=estimator.get_params(deep=False),
        classes=classes,
        model=model,
        tokenizer=copy.deepcopy(checkpoint.tokenizer),
        adapter=tensors,
    )
    restore(estimator, fitted, runtime)
    trained = set(estimator._tuning_mode().trained_tensors(estimator.module_))
    if trained != set(tensors):
        raise ValueError(
            f"The trained tensors in {directory} do not hold what "
            f"tuning={estimator.tuning!r} trains "
            f"(missing: {sorted(trained - set(tensors))[:5]}); the save is incomplete."
        )
    remember_base(estimator, base_location(location))
    return estimator
