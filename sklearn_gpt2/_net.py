"""The skorch side of the estimator: how texts become batches, steps and logits.

``TextClassifierNet`` overrides only the steps skorch lets a subclass override (``get_dataset``,
``get_iterator``, ``infer``, ``get_loss``, ``train_step``, ...); skorch keeps the training loop,
the callbacks, the history and device handling. The scikit-learn side (parameters, validation,
``fit``/``predict``) is :class:`sklearn_gpt2.GPT2SequenceClassifier`.
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

from ._callbacks import EpochAccuracy, LinearWarmupDecay
from ._data import (
    LengthGroupedBatchSampler,
    PaddedBatchCollator,
    SortedBatchSampler,
    TokenCache,
    TokenizedTexts,
    tokenize_cached,
)
from ._faults import out_of_memory_error
from ._model import SequenceClassifierModule, load_checkpoint
from ._precision import autocast, resolve_precision


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn the ``device`` parameter into a torch device; ``"auto"`` is CUDA if present."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but no CUDA GPU is available. Use "
            f"device='cpu', or device='auto' to pick a GPU only when there is one."
        )
    return resolved


class TextClassifierNet(NeuralNet):  # type: ignore[misc]
    """skorch ``NeuralNet`` fine-tuning a sequence classifier on tokenized texts.

    Subclasses provide the hyperparameters as attributes and set ``classes_``, ``n_classes_``,
    ``device_`` and ``_seed_`` before skorch's ``initialize``.
    """

    # skorch components fixed by this estimator's design; they are not hyperparameters.
    module = SequenceClassifierModule
    criterion = torch.nn.CrossEntropyLoss
    optimizer = torch.optim.AdamW
    iterator_train = DataLoader
    iterator_valid = DataLoader
    dataset = TokenizedTexts
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

    def fit_loop(self, *args: Any, **kwargs: Any) -> TextClassifierNet:
        """Run skorch's loop, noting a KeyboardInterrupt (which skorch swallows) for ``fit``."""
        try:
            return super().fit_loop(*args, **kwargs)
        except KeyboardInterrupt:
            self._interrupted_ = True
            raise

    @property
    def _checkpoint(self) -> Any:
        return load_checkpoint(self.model_name_or_path, self.n_classes_)

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
        self.device = str(getattr(self, "device_", None) or resolve_device(device))
        try:
            super().load_params(*args, **kwargs)
        finally:
            self.device = device

    def get_default_callbacks(self) -> list[tuple[str, Any]]:
        """Return skorch's timer and loss records, accuracy, the LR schedule and the epoch log."""
        callbacks: list[tuple[str, Any]] = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("train_acc", EpochAccuracy("train_acc", on_train=True)),
            ("valid_acc", EpochAccuracy("valid_acc", on_train=False)),
            ("lr_schedule", LinearWarmupDecay(self.warmup_ratio)),
        ]
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks.append(("print_log", PrintLog()))
        return callbacks

    @property
    def _default_callbacks(self) -> list[tuple[str, Any]]:
        return self.get_default_callbacks()

    def _initialize_module(self, reason: str | None = None) -> TextClassifierNet:
        # skorch would move the module to self.device, which may be "auto"; we use device_.
        with self._current_init_context("module"):
            self.initialize_module()
        return self

    def _initialize_criterion(self, reason: str | None = None) -> TextClassifierNet:
        with self._current_init_context("criterion"):
            self.initialize_criterion()
        return self

    def initialize_module(self) -> TextClassifierNet:
        """Build a fresh model from the (cached) checkpoint on ``device_``."""
        checkpoint = self._checkpoint
        id2label = {index: str(label) for index, label in enumerate(self.classes_)}
        model = checkpoint.fresh_model(id2label, seed=self._seed_)
        self.tokenizer_ = checkpoint.tokenizer
        # Held by the fitted estimator, so predicting never needs the checkpoint files again.
        self._token_cache_ = checkpoint.token_cache.setdefault("texts", TokenCache())
        self.module_ = SequenceClassifierModule(model, checkpoint.last_token_pooling).to(
            self.device_
        )
        return self

    def initialize_criterion(self) -> TextClassifierNet:
        """Cross-entropy on logits."""
        self.criterion_ = torch.nn.CrossEntropyLoss()
        return self

    def initialize_optimizer(self, triggered_directly: Any = None) -> TextClassifierNet:
        """AdamW with weight decay on weight matrices only; fused where torch supports it."""
        decay, no_decay = [], []
        for parameter in self.module_.parameters():
            if parameter.requires_grad:
                (decay if parameter.ndim >= 2 else no_decay).append(parameter)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        self.optimizer_ = torch.optim.AdamW(groups, lr=self.lr, eps=1e-8, fused=True)
        precision = resolve_precision(self.precision, self.device_)
        self.grad_scaler_ = torch.amp.GradScaler(self.device_.type, enabled=precision == "float16")
        return self

    def get_dataset(self, X: Any, y: Any = None) -> TokenizedTexts:
        """Tokenize texts (once per ``max_length``, cached per checkpoint)."""
        if isinstance(X, TokenizedTexts):
            return X
        token_ids = tokenize_cached(self.tokenizer_, X, self.max_length, self._token_cache_)
        return TokenizedTexts(token_ids, None if y is None else np.asarray(y))

    def get_split_datasets(
        self, X: Any, y: Any = None, **fit_params: Any
    ) -> tuple[TokenizedTexts, TokenizedTexts | None]:
        """All texts for training, unless ``validation_fraction`` asks for a held-out part."""
        dataset = self.get_dataset(X, y)
        if self.validation_fraction is None:
            return dataset, None
        train, valid = train_test_split(
            np.arange(len(dataset)),
            test_size=self.validation_fraction,
            stratify=dataset.labels,
            random_state=self._seed_,
        )
        return dataset.subset(train), dataset.subset(valid)

    def get_iterator(self, dataset: TokenizedTexts, training: bool = False) -> DataLoader:
        """Length-grouped shuffled batches for training, length-sorted batches otherwise."""
        if training:
            rng = np.random.default_rng([self._seed_, len(self.history)])
            sampler: Any = LengthGroupedBatchSampler(dataset.lengths, self.batch_size, rng)
        else:
            sampler = SortedBatchSampler(dataset.lengths, self.batch_size)
        collate = PaddedBatchCollator(
            self.tokenizer_.pad_token_id, left=self.module_.last_token_pooling
        )
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)

    def infer(self, x: dict[str, torch.Tensor], **fit_params: Any) -> torch.Tensor:
        """Logits for one batch, in the configured precision."""
        x = {key: value.to(self.device_, non_blocking=True) for key, value in x.items()}
        with autocast(resolve_precision(self.precision, self.device_), self.device_):
            return self.module_(**x, **fit_params)

    def get_loss(
        self, y_pred: torch.Tensor, y_true: torch.Tensor, X: Any = None, training: bool = False
    ) -> torch.Tensor:
        """Cross-entropy, computed in float32 whatever the forward precision."""
        return self.criterion_(y_pred.float(), y_true.to(self.device_))

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
        """Logits for one batch without autograd bookkeeping."""
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
