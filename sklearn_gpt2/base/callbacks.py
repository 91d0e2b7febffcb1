"""skorch callbacks of every estimator: accuracy per epoch and the warmup/decay LR schedule."""

from __future__ import annotations

from typing import Any

import torch
from skorch.callbacks import Callback, LRScheduler
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
        """Start counting."""
        self.correct_, self.total_ = 0, 0

    def on_batch_end(
        self, net: Any, batch: Any = None, training: bool = False, **kwargs: Any
    ) -> None:
        """Count the batch's correct predictions."""
        if training != self.on_train or "y_pred" not in kwargs:
            return
        labels = batch[1]
        predicted = kwargs["y_pred"].argmax(-1).to(labels.device)
        self.correct_ += int((predicted == labels).sum())
        self.total_ += len(labels)

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        """Record the epoch's accuracy."""
        if self.total_:
            net.history.record(self.name, self.correct_ / self.total_)


def _linear_warmup_decay(
    optimizer: torch.optim.Optimizer,
    warmup_ratio: float,
    total_steps: int,
    last_epoch: int = -1,
) -> torch.optim.lr_scheduler.LambdaLR:
    return get_linear_schedule_with_warmup(
        optimizer, round(warmup_ratio * total_steps), total_steps, last_epoch=last_epoch
    )


class LinearWarmupDecay(LRScheduler):  # type: ignore[misc]
    """Linear warmup from 0 to ``lr``, then linear decay to 0 over all training steps.

    skorch's ``LRScheduler`` stepped every batch, with transformers'
    ``get_linear_schedule_with_warmup`` (the GPT-2 tutorial's schedule) as its policy. The
    total number of steps is known only when training starts, so it is set then; each call
    of ``fit`` or ``partial_fit`` runs the whole schedule from ``lr``.

    Parameters
    ----------
    warmup_ratio : float, default=0.0
        Fraction of all training steps spent warming up.
    """

    def __init__(self, warmup_ratio: float = 0.0) -> None:
        super().__init__(
            policy=_linear_warmup_decay,
            step_every="batch",
            event_name=None,
            warmup_ratio=warmup_ratio,
            total_steps=1,
            last_epoch=-1,
        )

    def on_train_begin(self, net: Any, X: Any = None, **kwargs: Any) -> None:
        """Size the schedule to this call's training steps, then let skorch build it."""
        self.total_steps = max(1, net.training_batches(net.get_dataset(X)) * net.max_epochs)
        super().on_train_begin(net, X=X, **kwargs)


def reject_unmonitorable_callbacks(estimator: Any) -> None:
    """Refuse, before training, a callback that monitors a validation score no fit records.

    skorch's ``EarlyStopping`` and ``Checkpoint`` monitor ``valid_loss`` by default; without a
    validation split skorch fails with ``KeyError: 'valid_loss'`` after a whole epoch.
    """
    if getattr(estimator, "validation_fraction", None) is not None:
        return
    for callback in estimator.callbacks or ():
        callback = callback[1] if isinstance(callback, tuple) else callback
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("valid_"):
            how = (
                "set validation_fraction (e.g. 0.1) to hold out texts for it, or monitor "
                "'train_loss'"
                if "validation_fraction" in estimator.get_params()
                else f"{type(estimator).__name__} holds out no texts for validation: monitor "
                "'train_loss'"
            )
            raise ValueError(
                f"The callback {type(callback).__name__} monitors {monitor!r}, which is only "
                f"recorded with a validation split; {how} "
                f"(e.g. {type(callback).__name__}(monitor='train_loss'))."
            )
