"""The base of every text classifier: the scikit-learn contract and the fit/predict skeleton.

``BaseTextClassifier`` holds what each estimator of the package has: parameter validation
(scikit-learn's ``_fit_context`` over an inheritable ``_parameter_constraints`` table), tags,
``classes_`` and fitted checks, ``fit`` / ``partial_fit`` / ``predict_proba`` / ``predict``,
devices and precision (one :class:`Runtime` per fit), persistence (one fitted-state
description, two codecs: :mod:`.persistable`) and fault handling; ``partial_fit`` is in
:mod:`.continued`. A subclass adds only what is its own:

* ``_head`` (which kind of model head it loads) and ``initialize_module`` (its module);
* ``make_dataset`` (its training targets), and ``get_loss`` if it is not cross-entropy;
* ``_proba_from_outputs`` (how a batch's outputs become probabilities);
* ``_fitted_extra`` / ``_module_from_saved`` (the state it adds to the shared description).

How much of the model a fit trains is a training mode (:mod:`sklearn_gpt2.training`), chosen
by the ``tuning`` parameter; per-text loss weights come from ``sample_weight`` and
``class_weight`` (:mod:`sklearn_gpt2.base.weights`).
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet

from ..models.checkpoint import Checkpoint, load_checkpoint
from ..text.validation import check_labels, check_texts
from .constraints import CallbackList, Device
from .continued import ContinuedTrainingMixin
from .faults import out_of_memory_error, report_interruption
from .net import TextNet
from .persistable import PersistableMixin
from .runtime import PRECISIONS, Runtime
from .weights import text_weights


class BaseTextClassifier(  # type: ignore[misc]
    PersistableMixin, ContinuedTrainingMixin, ClassifierMixin, TextNet
):
    """Shared machinery of the package's text classifiers (not for direct use)."""

    #: Parameters that define what a fit built: changing one needs a new fit (partial_fit and
    #: saving refuse a change).
    _refit_only: ClassVar[tuple[str, ...]] = ("tuning",)

    #: The kind of model head the estimator loads from its checkpoint.
    _head: ClassVar[str] = "sequence-classification"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "model_name_or_path": [str, os.PathLike],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "warmup_ratio": [Interval(Real, 0, 1, closed="both")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "precision": [StrOptions(set(PRECISIONS))],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "device": [Device()],
        "callbacks": [CallbackList(), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    #: Estimators without these parameters behave as with their defaults.
    lora_rank = 8
    class_weight: Any = None

    # ------------------------------------------------------------------ sklearn contract
    @classmethod
    def _get_param_names(cls) -> list[str]:
        # skorch treats every attribute without a trailing underscore as a parameter; ours are
        # exactly the arguments of __init__.
        return BaseEstimator._get_param_names.__func__(cls)  # type: ignore[attr-defined]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get the parameters of this estimator (those of ``__init__``)."""
        return BaseEstimator.get_params(self, deep=deep)

    def set_params(self, **params: Any) -> BaseTextClassifier:
        """Set the parameters of this estimator (those of ``__init__``); ``fit`` checks them."""
        # Not skorch's: it re-initializes callbacks at once (raising on values that fit would
        # reject with a clear message) and accepts keys that get_params, and so clone, ignore.
        return BaseEstimator.set_params(self, **params)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return BaseEstimator.__repr__(self)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.target_tags.required = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_") and getattr(self, "module_", None) is not None

    def _validate_params(self) -> None:
        # scikit-learn's (against _parameter_constraints), which _fit_context calls; skorch's
        # of the same name checks skorch's own prefixed arguments, which we do not take.
        BaseEstimator._validate_params(self)

    def _check_params(self) -> None:
        """Validate the parameters against ``_parameter_constraints`` (scikit-learn's errors)."""
        self._validate_params()

    # ------------------------------------------------------------------ fitting
    @property
    def _checkpoint(self) -> Checkpoint:
        return load_checkpoint(self.model_name_or_path)

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, **fit_params: Any
    ) -> BaseTextClassifier:
        """Train on texts ``X`` and labels ``y``, starting from the checkpoint.

        Parameters
        ----------
        X : iterable of str
            Training texts (list, tuple, numpy array or pandas Series).
        y : array-like of shape (n_samples,)
            Class labels: strings, integers or booleans; at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each text's loss (the loss is the weighted mean of a
            batch's losses), multiplied by ``class_weight``. In a ``Pipeline``, request it
            with ``set_fit_request(sample_weight=True)`` under metadata routing.
        **fit_params : dict
            None are accepted (skorch would pass them to the module); an unknown keyword
            raises ``TypeError``.

        Returns
        -------
        self : estimator
            The fitted estimator.
        """
        # Forget the previous fit first: a refit that fails, even on bad input, must not
        # leave the old model predicting under the new parameters.
        self._forget_fit()
        return self._fit(X, y, sample_weight, **fit_params)

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit(self, X: Any, y: Any, sample_weight: Any, **fit_params: Any) -> BaseTextClassifier:
        self._check_fit_params(fit_params)
        texts = check_texts(X)
        labels = check_labels(y, len(texts), estimator=type(self).__name__)
        classes, label_indices = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({classes[0]!r}); a classifier needs at least two "
                f"distinct labels to learn from."
            )
        try:
            self.classes_ = classes
            self.n_classes_ = len(classes)
            self.set_runtime(Runtime.resolve(self.device, self.precision))
            self._seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            checkpoint = self._checkpoint
            self._base_checkpoint_ = checkpoint.name  # saves name the base fitted on
            self._check_max_length(checkpoint.max_positions)
            # Read the weights now, outside the seeded training region: loading draws from
            # torch's random generator, which would make a first fit differ from the next.
            checkpoint.template(self._head, self._head_outputs())
            self.tokenizer_ = checkpoint.tokenizer
            # Held by the fitted estimator, so predicting never needs the checkpoint files again.
            self.tokenize_ = checkpoint.tokenize
            self._check_validation_split(label_indices)
            self._tuning_mode().bind_checkpoint(self, checkpoint)
            weights = text_weights(sample_weight, self.class_weight, classes, label_indices)
            self._prepare_fit(texts, label_indices)
        except BaseException:
            self._forget_fit()
            raise
        return self._train(texts, label_indices, weights=weights)

    def _callback_settings(self) -> tuple[Any, ...]:
        # The parameters the callbacks are built from: a change rebuilds them in partial_fit.
        return (id(self.callbacks), self.warmup_ratio, self.verbose)

    def _head_outputs(self) -> int | None:
        """Outputs of the head the checkpoint is loaded with (None: the checkpoint's own)."""
        return None

    def _prepare_fit(self, texts: list[str], label_indices: np.ndarray) -> None:
        """What an estimator learns before training (nothing by default)."""

    def _check_fit_params(self, fit_params: dict[str, Any]) -> None:
        # skorch would pass them to the module's forward, which takes none of them.
        if fit_params:
            raise TypeError(
                f"{type(self).__name__}.fit got unexpected keyword arguments "
                f"{sorted(fit_params)}; it takes the texts X and the labels y. Set "
                f"hyperparameters in the constructor or with set_params."
            )

    def _check_max_length(self, max_positions: int | None) -> None:
        if max_positions is not None and self.max_length > max_positions:
            raise ValueError(
                f"max_length={self.max_length} exceeds the model's context of {max_positions} "
                f"tokens; use max_length <= {max_positions}."
            )

    def _check_validation_split(self, label_indices: np.ndarray) -> None:
        """Refuse a ``validation_fraction`` that cannot be stratified, naming the label."""
        if self.validation_fraction is None:
            return
        n_texts = len(label_indices)
        n_valid = math.ceil(self.validation_fraction * n_texts)
        counts = np.bincount(label_indices, minlength=len(self.classes_))
        rare = int(np.argmin(counts))
        if counts[rare] < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} holds out a stratified part "
                f"of the texts, which needs at least 2 texts of each class; class "
                f"{self.classes_[rare]!r} has {counts[rare]}. Add texts of that class or set "
                f"validation_fraction=None."
            )
        if min(n_valid, n_texts - n_valid) < len(self.classes_):
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n_texts} texts leaves "
                f"{n_valid} held out and {n_texts - n_valid} to train on, fewer than the "
                f"{len(self.classes_)} classes; use more texts or another validation_fraction."
            )

    def _run_training(
        self, texts: list[str], label_indices: np.ndarray, weights: np.ndarray | None
    ) -> None:
        """Skorch's loop over ``max_epochs`` epochs, seeded by the fit and the epochs so far.

        ``weights`` (one per text, or None) weight the loss for this call only: the rows
        carry their text's index, and ``get_loss`` looks the weight up.
        """
        self._interrupted_ = False
        self.__dict__["_loss_weights_"] = (
            None if weights is None else torch.from_numpy(weights.astype(np.float32))
        )
        with torch.random.fork_rng(devices=self.runtime_.cuda_devices):
            torch.manual_seed(self._seed_ + len(self.history_ or ()))
            NeuralNet.partial_fit(
                self, texts, label_indices.astype(np.int64), _routing_method="fit"
            )

    def _train(
        self, texts: list[str], label_indices: np.ndarray, weights: np.ndarray | None = None
    ) -> BaseTextClassifier:
        """Initialize from the checkpoint and train; on failure, leave the estimator unfitted."""
        try:
            with torch.random.fork_rng(devices=self.runtime_.cuda_devices):
                torch.manual_seed(self._seed_)
                self.initialize()
            self._callbacks_used_ = self._callback_settings()
            if self.max_epochs > 0:
                self._run_training(texts, label_indices, weights)
        except torch.OutOfMemoryError as error:
            self._forget_fit()
            raise out_of_memory_error(error, self, "fit") from error
        except BaseException:
            self._forget_fit()
            raise
        finally:
            self.__dict__.pop("_loss_weights_", None)
        self.__dict__["_tuning_fitted_"] = self.tuning
        params = self.get_params(deep=False)
        self.__dict__["_fitted_params_"] = {name: params[name] for name in self._refit_only}
        # The last step's gradients are no longer needed: free their memory (a model's worth)
        # before prediction; the optimizer keeps its state for partial_fit.
        self.optimizer_.zero_grad(set_to_none=True)
        if getattr(self, "_interrupted_", False):
            report_interruption(self)
        return self

    def _forget_fit(self) -> None:
        """Drop every fitted attribute, so a failed fit never leaves a half-fitted estimator."""
        state = vars(self)
        for name in [name for name in state if name.endswith("_") and not name.startswith("__")]:
            # Bypass skorch's __delattr__ bookkeeping: we reset it wholesale below.
            del state[name]
        self._modules, self._criteria, self._optimizers = [], [], []

    # ------------------------------------------------------------------ prediction
    def _proba_from_outputs(self, outputs: torch.Tensor) -> np.ndarray:
        """Probabilities (float64, rows summing to 1) from one batch of module outputs."""
        return torch.softmax(outputs.double(), dim=-1).cpu().numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of texts ``X``.

        Parameters
        ----------
        X : iterable of str
            Texts to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``; rows sum to 1; rows follow the order of ``X``.
        """
        check_is_fitted(self)
        texts = check_texts(X)
        self.refresh_runtime()
        dataset = self.get_dataset(texts)
        proba = np.zeros((len(texts), self.n_classes_))
        rows_per_text = np.zeros(len(texts))
        # One autocast region around all batches: autocast caches its low-precision copy of
        # each weight until the region ends, so weights are cast once per call, not per batch.
        # Each batch carries its rows' text indices: its probabilities go straight to their
        # place in the caller's order (averaged where a text has several rows), so no
        # per-batch tensor outlives its batch.
        try:
            with self.runtime_.autocast():
                for batch in self.get_iterator(dataset, training=False):
                    rows = batch[0]["text_index"].numpy()
                    np.add.at(proba, rows, self._proba_from_outputs(self.evaluation_step(batch)))
                    np.add.at(rows_per_text, rows, 1.0)
        except torch.OutOfMemoryError as error:
            raise out_of_memory_error(error, self, "predict") from error
        return proba / rows_per_text[:, None]

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels of texts ``X``.

        Parameters
        ----------
        X : iterable of str
            Texts to classify.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Labels from ``classes_``, in the order of ``X``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on texts ``X`` against labels ``y``.

        Parameters
        ----------
        X : iterable of str
            Texts.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Accuracy: the fraction of texts whose predicted label equals ``y``.
        """
        return float(ClassifierMixin.score(self, X, y, sample_weight=sample_weight))
