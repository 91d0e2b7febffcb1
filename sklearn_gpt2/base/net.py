"""The skorch net an estimator owns: its documented steps extended, never its loop replaced.

``TextNet`` overrides only the steps skorch documents for extension: ``get_dataset``,
``get_split_datasets``, ``get_iterator``, ``infer``, ``get_loss``, ``train_step_single``,
``_zero_grad_optimizer``, ``_step_optimizer`` and the ``initialize_*`` methods. skorch keeps the
training loop (``train_step``, epochs, callbacks, history), so a mixin that takes over the
forward and backward pass, gradient scaling and clipping (skorch's ``AccelerateMixin`` hooks
``train_step_single`` and ``_step_optimizer``) plugs in without a fork of the loop.

The net belongs to one estimator (its ``owner``): the hyperparameters are read from it, and
what differs between estimators (the module, the training rows, per-row losses, prediction
outputs) is asked of it. Loss weights (``sample_weight``, ``class_weight``) travel in the
batch, as ``sample_weight`` beside the inputs.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog, ProgressBar
from torch.utils.data import DataLoader

from ..text.batching import LengthGroupedBatchSampler, SortedBatchSampler
from ..training import tuning_mode
from ..training.dataset import BOOKKEEPING_KEYS, TextDataset
from .callbacks import LinearWarmupDecay, reject_unmonitorable_callbacks
from .faults import out_of_memory_error


class _FromOwner:
    """A hyperparameter of the net that is its owner's parameter of the same name."""

    _MISSING = object()

    def __init__(self, default: Any = _MISSING) -> None:
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, net: Any, objtype: Any = None) -> Any:
        if net is None:
            return self
        if self.default is self._MISSING:
            return getattr(net.owner, self.name)
        return getattr(net.owner, self.name, self.default)


class TextNet(NeuralNet):  # type: ignore[misc]
    """skorch ``NeuralNet`` training an estimator's module on rows of tokenized texts.

    Parameters
    ----------
    owner : BaseTextClassifier
        The estimator whose parameters, module and rows the net uses.
    """

    # skorch components fixed by this design; they are not hyperparameters.
    module = torch.nn.Module
    criterion = torch.nn.CrossEntropyLoss
    optimizer = torch.optim.AdamW
    iterator_train = DataLoader
    iterator_valid = DataLoader
    dataset = TextDataset
    train_split = None
    predict_nonlinearity = None
    warm_start = False
    compile = False
    #: skorch's default: each scoring callback decides (EpochScoring reuses the epoch's outputs).
    use_caching = "auto"
    torch_load_kwargs = None
    initialized_ = False
    history_ = None
    virtual_params_: MappingProxyType[str, Any] = MappingProxyType({})

    lr = _FromOwner()
    batch_size = _FromOwner()
    max_epochs = _FromOwner()
    callbacks = _FromOwner()
    verbose = _FromOwner()
    weight_decay = _FromOwner()
    warmup_ratio = _FromOwner()
    #: An estimator without the parameter holds out nothing.
    validation_fraction = _FromOwner(default=None)
    max_grad_norm = _FromOwner(default=None)

    def __init__(self, owner: Any, device: Any = "owner", **kwargs: Any) -> None:
        # ``device`` and the prefixed keywords are what skorch's mixins pass up (e.g.
        # ``AccelerateMixin``: device=None, as accelerate places the model itself, and
        # callbacks__print_log__sink); by default the owner's runtime decides the device.
        self.owner = owner
        self._params_to_validate: set[str] = set()
        self.device = str(owner.runtime_.device) if device == "owner" else device
        self.interrupted_ = False
        for name, value in kwargs.items():
            if "__" not in name:
                raise TypeError(f"TextNet got an unexpected keyword argument {name!r}.")
            setattr(self, name, value)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyperparameters the net reads from its owner (skorch callbacks ask for them)."""
        names = [name for name, value in vars(type(self)).items() if isinstance(value, _FromOwner)]
        for base in type(self).__mro__[1:]:
            names += [name for name, value in vars(base).items() if isinstance(value, _FromOwner)]
        return {name: getattr(self, name) for name in dict.fromkeys(names)}

    @property
    def runtime_(self) -> Any:
        """The owner's resolved device and precision."""
        return self.owner.runtime_

    def _tuning_mode(self) -> Any:
        return tuning_mode(self.owner._fitted_tuning())

    # ------------------------------------------------------------------ loop
    def fit_loop(self, *args: Any, **kwargs: Any) -> TextNet:
        """Run skorch's loop, noting a KeyboardInterrupt (which skorch swallows) for ``fit``."""
        try:
            return super().fit_loop(*args, **kwargs)
        except KeyboardInterrupt:
            self.interrupted_ = True
            raise

    def get_default_callbacks(self) -> list[tuple[str, Any]]:
        """Return skorch's timer and loss records, accuracy, the LR schedule and the epoch log."""
        callbacks: list[tuple[str, Any]] = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            *self.owner._scoring_callbacks(),
            ("lr_schedule", LinearWarmupDecay(self.owner.warmup_ratio)),
        ]
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks.append(("print_log", PrintLog()))
        return callbacks

    @property
    def _default_callbacks(self) -> list[tuple[str, Any]]:
        return self.get_default_callbacks()

    def _initialize_callbacks(self) -> TextNet:
        reject_unmonitorable_callbacks(self.owner)
        return super()._initialize_callbacks()  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ components
    def _initialize_module(self, reason: str | None = None) -> TextNet:
        # skorch would move the module to self.device as given; ours is the resolved device.
        with self._current_init_context("module"):
            self.initialize_module()
        return self

    def initialize_module(self) -> TextNet:
        """The owner's fresh module on the runtime's device, prepared by the training mode."""
        module = self.owner._new_module().to(self.runtime_.device)
        self.module_ = self._tuning_mode().prepare(self.owner, module)
        return self

    def _initialize_criterion(self, reason: str | None = None) -> TextNet:
        with self._current_init_context("criterion"):
            self.initialize_criterion()
        return self

    def initialize_criterion(self) -> TextNet:
        """Cross-entropy on logits (the per-row losses are the owner's ``_row_losses``)."""
        self.criterion_ = torch.nn.CrossEntropyLoss(reduction="none")
        return self

    def initialize_optimizer(self, triggered_directly: Any = None) -> TextNet:
        """AdamW on the trainable parameters, weight decay on matrices only; fused kernels."""
        decay, no_decay = [], []
        for parameter in self.module_.parameters():
            if parameter.requires_grad:
                (decay if parameter.ndim >= 2 else no_decay).append(parameter)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        self.optimizer_ = torch.optim.AdamW(groups, lr=self.lr, eps=1e-8, fused=True)
        self.grad_scaler_ = self.runtime_.grad_scaler()
        return self

    # ------------------------------------------------------------------ data
    def get_dataset(self, X: Any, y: Any = None) -> TextDataset:
        """Rows as the training mode makes them (token ids, or cached features)."""
        if isinstance(X, TextDataset):
            return X
        return self._tuning_mode().dataset(self.owner, X, y)  # type: ignore[no-any-return]

    def split_rows(self, dataset: TextDataset) -> tuple[np.ndarray, np.ndarray | None]:
        """Positions of the training rows and of the validation rows (None: no validation).

        The split is of texts, stratified by class: every row of a text is on one side.
        """
        if self.validation_fraction is None:
            return np.arange(len(dataset)), None
        texts, first_row = np.unique(dataset.text_index, return_index=True)
        train_texts, _ = train_test_split(
            texts,
            test_size=self.validation_fraction,
            stratify=dataset.labels[first_row],
            random_state=self.owner._seed_,
        )
        in_train = np.isin(dataset.text_index, train_texts)
        return np.flatnonzero(in_train), np.flatnonzero(~in_train)

    def get_split_datasets(
        self, X: Any, y: Any = None, **fit_params: Any
    ) -> tuple[TextDataset, TextDataset | None]:
        """All rows for training, unless ``validation_fraction`` holds out some texts."""
        dataset = self.get_dataset(X, y)
        train, valid = self.split_rows(dataset)
        if valid is None:
            return dataset, None
        return dataset.subset(train), dataset.subset(valid)

    def training_batches(self, dataset: TextDataset) -> int:
        """Batches one training epoch over ``dataset`` runs (after the validation split)."""
        train, _ = self.split_rows(dataset)
        return -(-len(train) // self.batch_size)

    def get_iterator(self, dataset: TextDataset, training: bool = False) -> DataLoader:
        """Length-grouped shuffled batches for training, length-sorted batches otherwise."""
        if training:
            rng = np.random.default_rng([self.owner._seed_, len(self.history)])
            sampler: Any = LengthGroupedBatchSampler(dataset.lengths, self.batch_size, rng)
        else:
            sampler = SortedBatchSampler(dataset.lengths, self.batch_size)
        collate = self._tuning_mode().collator(self.owner, weighted=dataset.weights is not None)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)

    # ------------------------------------------------------------------ steps
    def infer(self, x: dict[str, torch.Tensor], **fit_params: Any) -> torch.Tensor:
        """Module outputs for one batch, in the runtime's precision."""
        device = self.runtime_.device
        inputs = {
            key: value.to(device, non_blocking=True)
            for key, value in x.items()
            if key not in BOOKKEEPING_KEYS
        }
        with self.runtime_.autocast():
            return self.module_(**inputs, **fit_params)

    def get_loss(
        self, y_pred: torch.Tensor, y_true: torch.Tensor, X: Any = None, training: bool = False
    ) -> torch.Tensor:
        """The batch's mean per-row loss (float32), weighted by the rows' ``sample_weight``."""
        losses = self.owner._row_losses(y_pred, y_true.to(self.runtime_.device))
        weights = X.get("sample_weight") if isinstance(X, dict) else None
        if weights is None:
            return losses.mean()
        w = weights.to(losses.device)
        # A batch whose weights are all zero contributes nothing (rather than 0/0).
        return (w * losses).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, torch.Tensor]:
        """Forward, loss and (scaled) backward of one batch; a non-finite loss stops the fit."""
        self._set_training(True)
        x, y = batch
        y_pred = self.infer(x, **fit_params)
        loss = self.get_loss(y_pred, y, X=x, training=True)
        if not torch.isfinite(loss):
            raise FloatingPointError(self.owner._non_finite_loss_message(loss.item()))
        self.grad_scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def _zero_grad_optimizer(self, set_to_none: bool | None = None) -> None:
        # Gradients set to None, not zeroed: no memory is written for them between steps.
        super()._zero_grad_optimizer(set_to_none=True)

    def _step_optimizer(self, step_fn: Any) -> None:
        # GradScaler cannot step with a closure: run the step, then unscale, clip and step.
        step_fn()
        scaler = self.grad_scaler_
        if self.max_grad_norm is not None:
            scaler.unscale_(self.optimizer_)
            torch.nn.utils.clip_grad_norm_(self.module_.parameters(), self.max_grad_norm)
        scaler.step(self.optimizer_)
        scaler.update()

    def evaluation_step(self, batch: Any, training: bool = False) -> torch.Tensor:
        """Module outputs for one batch without autograd bookkeeping."""
        self._set_training(training)
        x, _ = batch
        with torch.inference_mode():
            return self.infer(x)

    def forward_iter(self, X: Any, training: bool = False, device: str = "cpu") -> Any:
        """Run skorch's batched forward pass, with advice when it runs out of memory."""
        try:
            yield from super().forward_iter(X, training=training, device=device)
        except torch.OutOfMemoryError as error:
            raise out_of_memory_error(error, self.owner, "predict") from error

    # ------------------------------------------------------------------ for skorch's scoring
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of raw texts (as the owner gives them), or of a dataset's rows.

        skorch's scoring callbacks call ``predict`` with the validation dataset and compare
        with the labels of the batches they saw, in the order the batches came.
        """
        if not isinstance(X, TextDataset):
            return self.owner.predict_proba(X)  # type: ignore[no-any-return]
        outputs = [self.owner._proba_from_outputs(out) for out in self.forward_iter(X)]
        return np.concatenate(outputs) if outputs else np.empty((0, self.owner.n_classes_))

    def predict(self, X: Any) -> np.ndarray:
        """Class indices (not labels: skorch compares class indices) of texts or of rows."""
        return self.predict_proba(X).argmax(axis=1)
