"""The skorch side shared by every estimator: how texts become datasets, batches and steps.

``TextNet`` overrides only the steps skorch lets a subclass override (``get_dataset``,
``get_iterator``, ``infer``, ``get_loss``, ``train_step``, ...); skorch keeps the training loop,
the callbacks and the history. An estimator adds what is its own on top: its module
(``initialize_module``), its targets (``make_dataset``) and, where its loss differs from
cross-entropy on one class index per text, ``get_loss``. The training mode (the ``tuning``
parameter, see :mod:`sklearn_gpt2.training`) decides which parameters train and what a row
holds; per-text loss weights (``sample_weight``, ``class_weight``) enter the loss here.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog, ProgressBar
from torch.utils.data import DataLoader

from ..text.batching import LengthGroupedBatchSampler, SortedBatchSampler
from ..text.spec import TokenizationSpec
from .callbacks import EpochAccuracy, LinearWarmupDecay
from .dataset import TextDataset
from .faults import out_of_memory_error
from .runtime import Runtime


class TextNet(NeuralNet):  # type: ignore[misc]
    """skorch ``NeuralNet`` training a module on tokenized texts.

    Subclasses provide the hyperparameters as attributes and, before skorch's ``initialize``,
    set ``runtime_``, ``_seed_`` and ``tokenize_`` (a :class:`CachedTokenizer`).
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
    use_caching = False
    torch_load_kwargs = None
    # skorch reads these before its first initialize(); class defaults keep __init__ clean.
    initialized_ = False
    history_ = None
    virtual_params_: MappingProxyType[str, Any] = MappingProxyType({})

    runtime_: Runtime
    #: Every weight trains unless an estimator has a ``tuning`` parameter saying otherwise.
    tuning = "full"

    def _tuning_mode(self) -> Any:
        """The training mode of the fitted model, else the one named by ``tuning``.

        A fitted model keeps the mode it was trained in (see :mod:`sklearn_gpt2.training`):
        ``set_params(tuning=...)`` applies to the next ``fit``.
        """
        from ..training import tuning_mode

        return tuning_mode(self.__dict__.get("_tuning_fitted_", self.tuning))

    @property
    def device_(self) -> torch.device:
        """Where the model lives (the resolved ``device`` parameter)."""
        return self.runtime_.device

    def refresh_runtime(self) -> Runtime:
        """Re-resolve ``runtime_`` if ``device`` or ``precision`` changed since it was resolved.

        Called once per ``predict_proba`` / ``partial_fit`` call (never per batch), so
        ``set_params(precision=...)`` on a fitted estimator applies to what follows; a new
        device moves the module there.
        """
        requested = (str(self.device), self.precision)
        if getattr(self, "_runtime_params_", None) == requested:
            return self.runtime_
        runtime = Runtime.resolve(self.device, self.precision)
        if runtime.device != self.runtime_.device:
            self.module_.to(runtime.device)
        vars(self).update(runtime_=runtime, _runtime_params_=requested)
        return runtime

    def set_runtime(self, runtime: Runtime) -> None:
        """Use ``runtime`` from now on (resolved by ``fit`` or by loading)."""
        vars(self).update(runtime_=runtime, _runtime_params_=(str(self.device), self.precision))

    # ------------------------------------------------------------------ loop
    def fit_loop(self, *args: Any, **kwargs: Any) -> TextNet:
        """Run skorch's loop, noting a KeyboardInterrupt (which skorch swallows) for ``fit``."""
        try:
            return super().fit_loop(*args, **kwargs)
        except KeyboardInterrupt:
            self._interrupted_ = True
            raise

    def get_default_callbacks(self) -> list[tuple[str, Any]]:
        """Return skorch's timer and loss records, accuracy, the LR schedule and the epoch log."""
        callbacks: list[tuple[str, Any]] = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            *self.get_scoring_callbacks(),
            ("lr_schedule", LinearWarmupDecay(self.warmup_ratio)),
        ]
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks.append(("print_log", PrintLog()))
        return callbacks

    def get_scoring_callbacks(self) -> list[tuple[str, Any]]:
        """Per-epoch scores besides the losses: accuracy of class-index targets."""
        return [
            ("train_acc", EpochAccuracy("train_acc", on_train=True)),
            ("valid_acc", EpochAccuracy("valid_acc", on_train=False)),
        ]

    @property
    def _default_callbacks(self) -> list[tuple[str, Any]]:
        return self.get_default_callbacks()

    def load_params(self, *args: Any, **kwargs: Any) -> None:
        """Load what skorch's ``save_params`` or ``Checkpoint`` saved, onto ``device_``.

        Parameters
        ----------
        *args, **kwargs
            As for skorch's ``NeuralNet.load_params``.
        """
        # skorch maps the tensors to self.device, which may be "auto", and may rewrite it; map
        # them to the resolved device and leave the user's parameter as it was.
        device = self.device
        self.device = str(self.device_)
        try:
            super().load_params(*args, **kwargs)
        finally:
            self.device = device

    # ------------------------------------------------------------------ components
    def _initialize_module(self, reason: str | None = None) -> TextNet:
        # skorch would move the module to self.device, which may be "auto"; we use device_.
        with self._current_init_context("module"):
            self.initialize_module()
            self._tuning_mode().prepare(self, self.module_)
        return self

    def _initialize_criterion(self, reason: str | None = None) -> TextNet:
        with self._current_init_context("criterion"):
            self.initialize_criterion()
        return self

    def initialize_criterion(self) -> TextNet:
        """Cross-entropy on logits."""
        self.criterion_ = torch.nn.CrossEntropyLoss()
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
    def tokenization_spec(self) -> TokenizationSpec:
        """How this estimator's texts are tokenized (the cache key of their token ids)."""
        return TokenizationSpec(max_length=self.max_length)

    def make_dataset(self, token_ids: list[np.ndarray], y: Any) -> TextDataset:
        """Rows for training or prediction: by default, one class index per text."""
        return TextDataset(token_ids, None if y is None else np.asarray(y))

    def get_dataset(self, X: Any, y: Any = None) -> TextDataset:
        """Rows as the training mode makes them (token ids, or cached features)."""
        if isinstance(X, TextDataset):
            return X
        return self._tuning_mode().dataset(self, X, y)

    def n_training_rows(self, n_rows: int) -> int:
        """How many of ``n_rows`` training rows are trained on (the rest validate)."""
        if self.validation_fraction is None:
            return n_rows
        # train_test_split rounds the held-out part up.
        return n_rows - math.ceil(self.validation_fraction * n_rows)

    def get_split_datasets(
        self, X: Any, y: Any = None, **fit_params: Any
    ) -> tuple[TextDataset, TextDataset | None]:
        """All texts for training, unless ``validation_fraction`` asks for a held-out part."""
        dataset = self.get_dataset(X, y)
        if self.validation_fraction is None:
            return dataset, None
        train, valid = train_test_split(
            np.arange(len(dataset)),
            test_size=self.validation_fraction,
            stratify=self.stratification_labels(dataset),
            random_state=self._seed_,
        )
        return dataset.subset(train), dataset.subset(valid)

    def stratification_labels(self, dataset: TextDataset) -> np.ndarray:
        """The class of each row, which the validation split keeps in proportion."""
        return dataset.labels

    def get_iterator(self, dataset: TextDataset, training: bool = False) -> DataLoader:
        """Length-grouped shuffled batches for training, length-sorted batches otherwise."""
        if training:
            rng = np.random.default_rng([self._seed_, len(self.history)])
            sampler: Any = LengthGroupedBatchSampler(dataset.lengths, self.batch_size, rng)
        else:
            sampler = SortedBatchSampler(dataset.lengths, self.batch_size)
        collate = self._tuning_mode().collator(self)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)

    # ------------------------------------------------------------------ steps
    def infer(self, x: dict[str, torch.Tensor], **fit_params: Any) -> torch.Tensor:
        """Module outputs for one batch, in the runtime's precision."""
        device = self.runtime_.device
        inputs = {
            key: value.to(device, non_blocking=True)
            for key, value in x.items()
            if key != "text_index"
        }
        with self.runtime_.autocast():
            return self.module_(**inputs, **fit_params)

    def get_loss(
        self, y_pred: torch.Tensor, y_true: torch.Tensor, X: Any = None, training: bool = False
    ) -> torch.Tensor:
        """Cross-entropy, computed in float32 whatever the forward precision.

        While a fit with ``sample_weight`` or ``class_weight`` runs, it is the weighted mean
        of the batch's per-text losses (each row looks its text's weight up by index).
        """
        y_true = y_true.to(self.runtime_.device)
        if vars(self).get("_loss_weights_") is None:
            return self.criterion_(y_pred.float(), y_true)
        losses = torch.nn.functional.cross_entropy(y_pred.float(), y_true, reduction="none")
        return self.weighted_mean(losses, X)

    def weighted_mean(self, losses: torch.Tensor, X: Any) -> torch.Tensor:
        """The batch's mean per-text loss, weighted when the fit has weights."""
        weights = vars(self).get("_loss_weights_")
        if weights is None or not isinstance(X, dict) or "text_index" not in X:
            return losses.mean()
        w = weights[X["text_index"]].to(losses.device)
        # A batch whose weights are all zero contributes nothing (rather than 0/0).
        return (w * losses).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, torch.Tensor]:
        """One optimizer step: forward, loss, backward, clip, step."""
        self._set_training(True)
        x, y = batch
        self.optimizer_.zero_grad(set_to_none=True)
        y_pred = self.infer(x, **fit_params)
        loss = self.get_loss(y_pred, y, X=x, training=True)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"The training loss became {loss.item()} at epoch {len(self.history)}. Lower "
                f"the learning rate (lr={self.lr}) or use precision='float32'."
            )
        self.grad_scaler_.scale(loss).backward()
        self.notify(
            "on_grad_computed",
            named_parameters=list(self.module_.named_parameters()),
            batch=batch,
            training=True,
        )
        if self.max_grad_norm is not None:
            self.grad_scaler_.unscale_(self.optimizer_)
            torch.nn.utils.clip_grad_norm_(self.module_.parameters(), self.max_grad_norm)
        self.grad_scaler_.step(self.optimizer_)
        self.grad_scaler_.update()
        return {"loss": loss.detach(), "y_pred": y_pred.detach()}

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
            raise out_of_memory_error(error, self, "predict") from error
