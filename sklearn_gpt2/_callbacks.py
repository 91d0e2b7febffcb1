"""skorch callbacks: accuracy per epoch and the linear warmup/decay learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any

import torch
from skorch.callbacks import Callback
from transformers import get_linear_schedule_with_warmup


class EpochAccuracy(Callback):
    """Record the accuracy of the batches seen in an epoch as ``train_acc`` or ``valid_acc``.

    Computed from the logits each step already produced, so it costs no extra forward pass.
    (skorch's ``EpochScoring`` would call ``predict`` on cached outputs, which assumes batches
    come in the caller's order; ours are grouped by length.)

    Parameters
    ----------
    name : str
        History key to record.
    on_train : bool
        Count training batches (True) or validation batches (False).
    """

    def __init__(self, name: str, on_train: bool) -> None:
        self.name = name
        self.on_train = on_train

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        self.correct_, self.total_ = 0, 0

    def on_batch_end(
        self, net: Any, batch: Any = None, training: bool = False, **kwargs: Any
    ) -> None:
        if training != self.on_train or "y_pred" not in kwargs:
            return
        labels = batch[1]
        predicted = kwargs["y_pred"].argmax(-1).to(labels.device)
        self.correct_ += int((predicted == labels).sum())
        self.total_ += len(labels)

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        if self.total_:
            net.history.record(self.name, self.correct_ / self.total_)


class LinearWarmupDecay(Callback):
    """Linear warmup from 0 to ``lr``, then linear decay to 0 over all training steps.

    The schedule of the GPT-2 classification tutorial (``get_linear_schedule_with_warmup``),
    stepped after every optimizer step.

    Parameters
    ----------
    warmup_ratio : float
        Fraction of all training steps spent warming up.
    """

    def __init__(self, warmup_ratio: float = 0.0) -> None:
        self.warmup_ratio = warmup_ratio

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        self.scheduler_: torch.optim.lr_scheduler.LambdaLR | None = None

    def on_epoch_begin(self, net: Any, dataset_train: Any = None, **kwargs: Any) -> None:
        if self.scheduler_ is not None or dataset_train is None:
            return
        total = math.ceil(len(dataset_train) / net.batch_size) * net.max_epochs
        self.scheduler_ = get_linear_schedule_with_warmup(
            net.optimizer_, round(self.warmup_ratio * total), total
        )

    def on_batch_end(self, net: Any, training: bool = False, **kwargs: Any) -> None:
        if training and self.scheduler_ is not None:
            self.scheduler_.step()
