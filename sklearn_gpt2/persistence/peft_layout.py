"""LoRA adapters in peft's own layout: ``adapter_config.json`` + ``adapter_model.safetensors``.

A saved LoRA classifier's adapters (and its classification head, as one of peft's
``modules_to_save``) are written the way ``PeftModel.save_pretrained`` writes them, so plain
peft loads them: ``PeftModel.from_pretrained(base_model, path)`` with the base model loaded by
transformers predicts what the classifier predicts. This module renames tensors between the
estimator's model (adapters injected in place, named ``...lora_A.default.weight``) and peft's
saved names (``base_model.model....lora_A.weight``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .directory_files import load_tensors_file
from .format import PEFT_CONFIG, PEFT_WEIGHTS

#: peft's prefix of every saved tensor name of a model wrapped in a ``PeftModel``.
_PREFIX = "base_model.model."
#: The adapter name peft gives a single adapter (removed from saved names).
_ADAPTER = "default"
_LORA_PART = re.compile(rf"\.(lora_[A-Za-z_]+)\.{_ADAPTER}\.")


def to_peft_names(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The estimator's tensor names as peft saves them."""
    return {
        _PREFIX + _LORA_PART.sub(r".\1.", name): tensor.detach().cpu().contiguous()
        for name, tensor in tensors.items()
    }


def from_peft_names(tensors: dict[str, torch.Tensor], where: Path) -> dict[str, torch.Tensor]:
    """Inverse of :func:`to_peft_names`."""
    renamed = {}
    for name, tensor in tensors.items():
        if not name.startswith(_PREFIX):
            raise ValueError(f"{where} holds {name!r}, which is not a tensor peft saves.")
        inner = name[len(_PREFIX) :]
        renamed[re.sub(r"\.(lora_[A-Za-z_]+)\.", rf".\1.{_ADAPTER}.", inner)] = tensor
    return renamed


def write_adapter(directory: Path, peft_config: Any, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` (adapters and head, the estimator's names) as a peft adapter."""
    directory.mkdir(parents=True, exist_ok=True)
    peft_config.save_pretrained(directory)
    save_file(to_peft_names(tensors), directory / PEFT_WEIGHTS)


def read_adapter(directory: Path) -> dict[str, torch.Tensor]:
    """The tensors of a peft adapter directory, by the estimator's names."""
    if not (directory / PEFT_CONFIG).is_file():
        raise FileNotFoundError(f"{directory / PEFT_CONFIG} is missing; the save is incomplete.")
    path = directory / PEFT_WEIGHTS
    return from_peft_names(load_tensors_file(path), path)
