"""What a training mode decides, and the default mode: every weight trains (``tuning="full"``).

A :class:`TuningMode` is consulted by the shared base at a handful of points:

* ``bind_checkpoint``: at the start of a fit, what it shares with other fits on the checkpoint;
* ``prepare``: after the module is built (from the checkpoint or from a saved state), which of
  its parameters train (freezing, adapters); the optimizer takes only those;
* ``dataset`` / ``collator``: what a training row holds (token ids, or cached features) and
  how rows become a batch;
* ``train``: what a fit does once the module is built (skorch's epochs; head mode solves its
  linear head instead);
* ``row_proba``: how prediction turns rows into probabilities (through the one batch runner);
* ``saved_model`` / ``trained_tensors``: what persistence writes (a plain transformers model
  plus any tensors it lacks; or only what was trained, for a save by reference);
* ``restore``: the inverse, on a model rebuilt from a saved state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..text.rows import Rows
from .dataset import PaddedBatchCollator, TextDataset


class TuningMode:
    """How a fit adapts the model; the base class trains every weight (``tuning="full"``)."""

    #: The value of the ``tuning`` parameter that selects this mode.
    name: ClassVar[str] = "full"
    #: Whether a save by reference (only what was trained, plus the base's fingerprint) exists.
    saves_by_reference: ClassVar[bool] = False

    def bind_checkpoint(self, estimator: Any, checkpoint: Any) -> None:
        """Take what the mode shares between fits from the checkpoint (nothing by default)."""

    def prepare(self, estimator: Any, module: Any) -> Any:
        """Set which parameters of ``module`` train (in place); return the module."""
        return module

    def dataset(self, estimator: Any, texts: Any, y: Any) -> TextDataset:
        """Rows for training: the texts' token ids (cached per checkpoint) and targets."""
        return estimator._make_dataset(estimator._rows(list(texts)), y)  # type: ignore[no-any-return]

    def collator(self, estimator: Any, weighted: bool = False) -> Any:
        """What turns rows into a batch: padding to the batch's longest row."""
        return PaddedBatchCollator(
            estimator.tokenizer_.pad_token_id, estimator._net.module_.pads_left, weighted
        )

    def train(self, estimator: Any, texts: Any, label_indices: Any, weights: Any) -> None:
        """Train the freshly built module of a ``fit``: ``max_epochs`` epochs of skorch's loop."""
        estimator._run_training(texts, label_indices, weights)

    def row_proba(self, estimator: Any, rows: Rows, texts: Any) -> Any:
        """Probabilities of each row (of ``texts``): the module on token ids, batch by batch."""
        return estimator._row_proba(rows)

    def saved_model(self, module: Any) -> tuple[Any, dict[str, torch.Tensor] | None]:
        """The plain transformers model to save, and any tensors it lacks (None: none)."""
        return module.model, None

    def trained_tensors(self, module: Any) -> dict[str, torch.Tensor]:
        """Only the tensors this mode trains, by their name in ``module.model``."""
        raise ValueError(
            f"tuning={self.name!r} trains every weight: there is no smaller save than the "
            f"whole model. Use save_pretrained(directory) (base='include')."
        )

    def restore(
        self,
        estimator: Any,
        module: Any,
        tensors: dict[str, torch.Tensor] | None,
    ) -> Any:
        """Prepare a module rebuilt from a saved plain model, then load ``tensors`` into it."""
        module = self.prepare(estimator, module)
        if tensors:
            load_tensors(module.model, tensors)
        return module


class FullTuning(TuningMode):
    """Every weight trains: the most accurate and the most expensive mode (the default)."""

    name = "full"


def load_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` into ``model`` by name; every one must name a tensor of the model."""
    unexpected = model.load_state_dict(tensors, strict=False).unexpected_keys
    if unexpected:
        raise ValueError(
            f"The saved tensors {sorted(unexpected)[:5]} do not belong to this model; the "
            f"saved classifier does not match its configuration (tuning, lora_rank, base)."
        )


def set_trainable(module: Any, trainable: Any) -> None:
    """Let exactly the parameters whose name satisfies ``trainable(name)`` train."""
    for name, parameter in module.named_parameters():
        parameter.requires_grad_(bool(trainable(name)))
