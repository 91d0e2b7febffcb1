"""``tuning="lora"``: low-rank adapters (through ``peft``) on the attention and MLP projections.

The adapters (rank ``lora_rank``, scaling ``lora_alpha = 2 * lora_rank``, no dropout) are
injected into the transformers model in place, so the module computes exactly as in
``"full"`` mode, padding invariance included. The adapters and the classification head train;
the backbone's weights get no gradients and, the optimizer taking only trainable parameters,
no optimizer state. Persistence writes the backbone as a plain transformers model plus the
adapter tensors, so a loaded classifier computes exactly what the fitted one did.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ..models.families import lora_target_modules
from ..models.sequence import head_name
from .modes import TuningMode, set_trainable


def lora_config(model: Any, rank: int) -> Any:
    """The peft ``LoraConfig`` for ``model``: its family's projections, never its head."""
    from peft import LoraConfig

    targets, fan_in_fan_out = lora_target_modules(model, head_name(model))
    return LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        bias="none",
        fan_in_fan_out=fan_in_fan_out,
        target_modules=targets,
    )


class LoraTuning(TuningMode):
    """Train low-rank adapters and the head; the pretrained weights stay frozen."""

    name = "lora"
    saves_by_reference = True

    def prepare(self, estimator: Any, module: Any) -> Any:
        """Inject the adapters into ``module.model``; only they and the head train."""
        from peft import inject_adapter_in_model

        model = module.model
        config = lora_config(model, int(getattr(estimator, "lora_rank", 8)))
        try:
            inject_adapter_in_model(config, model)
        except ValueError as error:
            raise ValueError(
                f"tuning='lora' found no projection to adapt in this {model.config.model_type} "
                f"model ({error}); use tuning='full' or 'head' for it."
            ) from error
        from peft.tuners.tuners_utils import BaseTunerLayer

        for layer in model.modules():
            if isinstance(layer, BaseTunerLayer):
                # peft casts each adapter's input to the adapter's float32 and autocast casts
                # it back: two copies of the activations per adapter for nothing. Autocast (or
                # float32 throughout) already gives the adapters matching dtypes.
                layer.cast_input_dtype_enabled = False  # type: ignore[attr-defined]
        prefix = head_name(model) + "."
        set_trainable(model, lambda name: "lora_" in name or name.startswith(prefix))
        return module

    def saved_model(self, module: Any) -> tuple[Any, dict[str, torch.Tensor] | None]:
        """A plain copy of the model without adapters, and the adapter tensors."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        plain = copy.deepcopy(module.model)
        adapted = [name for name, sub in plain.named_modules() if isinstance(sub, BaseTunerLayer)]
        for name in adapted:
            parent_name, _, child = name.rpartition(".")
            parent = plain.get_submodule(parent_name)
            setattr(parent, child, getattr(parent, child).get_base_layer())
        adapters = {k: v for k, v in module.model.state_dict().items() if "lora_" in k}
        return plain, adapters

    def peft_config(self, estimator: Any, module: Any, base: str) -> Any:
        """The ``LoraConfig`` peft saves beside the adapters: the head among its saved modules."""
        config = lora_config(module.model, int(getattr(estimator, "lora_rank", 8)))
        config.task_type = "SEQ_CLS"
        config.modules_to_save = [head_name(module.model)]
        config.base_model_name_or_path = base
        return config

    def trained_tensors(self, module: Any) -> dict[str, torch.Tensor]:
        """The adapters' and the head's tensors."""
        prefix = head_name(module.model) + "."
        return {
            k: v
            for k, v in module.model.state_dict().items()
            if "lora_" in k or k.startswith(prefix)
        }
