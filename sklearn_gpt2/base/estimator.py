"""The base of every text classifier: the scikit-learn contract and the fit skeleton.

``BaseTextClassifier`` holds what each estimator of the package has: parameter validation
(scikit-learn's ``_fit_context`` over an inheritable ``_parameter_constraints`` table), tags,
``classes_`` and fitted checks, ``fit``, devices and precision (one :class:`Runtime` per fit)
and the skorch net it owns (:class:`TextNet`, built by each fit). Prediction is
:mod:`.prediction`, ``partial_fit`` :mod:`.continued`, the checks before any work
:mod:`.checks`, persistence :mod:`.persistable`. A subclass adds only what is its own:

* ``_head`` (which kind of model head it loads) and ``_new_module`` (its module);
* ``_make_dataset`` (its training targets) and ``_row_losses`` if not cross-entropy;
* ``_outputs`` / ``_proba_from_outputs`` (how a batch becomes probabilities);
* ``_fitted_extra`` / ``_module_from_saved`` (the state it adds to the shared description).

How much of the model a fit trains is a training mode (:mod:`sklearn_gpt2.training`), chosen
by the ``tuning`` parameter; per-text loss weights come from ``sample_weight`` and
``class_weight`` (:mod:`sklearn_gpt2.base.weights`) and travel in the batches.
"""

from __future__ import annotations

import os
import threading
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..models.checkpoint import Checkpoint, load_checkpoint
from ..runtime import PRECISIONS, Runtime
from ..text.rows import Rows
from ..text.spec import TRUNCATIONS, TokenizationSpec
from ..text.truncation import text_rows
from ..text.validation import check_labels, check_texts
from ..training import tuning_mode
from ..training.dataset import TextDataset
from .callbacks import EpochAccuracy, reject_unmonitorable_callbacks
from .checks import InputChecksMixin
from .constraints import CallbackList, Device
from .continued import ContinuedTrainingMixin
from .faults import out_of_memory_error, report_interruption
from .net import TextNet
from .persistable import PersistableMixin
from .prediction import PredictionMixin
from .weights import text_weights

#: Guards the creation of each estimator's own lock.
_LOCK_GUARD = threading.Lock()


class BaseTextClassifier(  # type: ignore[misc]
    PersistableMixin,
    ContinuedTrainingMixin,
    PredictionMixin,
    InputChecksMixin,
    ClassifierMixin,
    BaseEstimator,
):
    """Shared machinery of the package's text classifiers (not for direct use)."""

    #: Parameters that define what a fit built: changing one needs a new fit (partial_fit and
    #: saving refuse a change).
    _refit_only: ClassVar[tuple[str, ...]] = ("tuning",)

    #: The kind of model head the estimator loads from its checkpoint.
    _head: ClassVar[str] = "sequence-classification"

    #: The skorch net a fit builds (a subclass with a mixin, e.g. skorch's ``AccelerateMixin``,
    #: takes over the forward/backward pass, gradient scaling and clipping).
    _net_class: ClassVar[type[TextNet]] = TextNet

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "model_name_or_path": [str, os.PathLike],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "truncation": [StrOptions(set(TRUNCATIONS))],
        "window_stride": [Interval(Integral, 1, None, closed="left"), None],
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

    # ------------------------------------------------------------------ sklearn contract
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.target_tags.required = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_") and getattr(self, "_net", None) is not None

    def _check_params(self) -> None:
        """Validate the parameters against ``_parameter_constraints`` (scikit-learn's errors)."""
        self._validate_params()

    @property
    def module_(self) -> torch.nn.Module:
        """The fitted torch module (the transformers model is its ``model`` attribute)."""
        check_is_fitted(self)
        return self._net.module_  # type: ignore[no-any-return]

    @property
    def history_(self) -> Any:
        """The training history: skorch's ``History``, one row per epoch."""
        check_is_fitted(self)
        return self._net.history_

    def _fitted_tuning(self) -> str:
        """The training mode of the fitted model, else the one the parameters name."""
        return str(self.__dict__.get("_tuning_fitted_", getattr(self, "tuning", "full")))

    def _tuning_mode(self) -> Any:
        """The training mode of the fitted model, else the one named by ``tuning``.

        A fitted model keeps the mode it was trained in (see :mod:`sklearn_gpt2.training`):
        ``set_params(tuning=...)`` applies to the next ``fit``.
        """
        return tuning_mode(self._fitted_tuning())

    # ------------------------------------------------------------------ runtime
    def _set_runtime(self, runtime: Runtime) -> None:
        """Use ``runtime`` from now on (resolved by ``fit`` or by loading)."""
        self.runtime_ = runtime
        self._runtime_params_ = (str(self.device), self.precision)
        net = getattr(self, "_net", None)
        if net is not None and net.device is not None:  # None: a mixin places the model
            net.device = str(runtime.device)

    def _refresh_runtime(self) -> Runtime:
        """Re-resolve ``runtime_`` if ``device`` or ``precision`` changed since it was resolved.

        Called once per ``predict_proba`` / ``partial_fit`` call (never per batch), so
        ``set_params(precision=...)`` on a fitted estimator applies to what follows; a new
        device moves the module there.
        """
        if getattr(self, "_runtime_params_", None) == (str(self.device), self.precision):
            return self.runtime_  # type: ignore[no-any-return]
        runtime = Runtime.resolve(self.device, self.precision)
        if runtime.device != self.runtime_.device:
            self._net.module_.to(runtime.device)
        self._set_runtime(runtime)
        return runtime

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
        with self._lock():
            # Forget the previous fit first: a refit that fails, even on bad input, must not
            # leave the old model predicting under the new parameters.
            self._forget_fit()
            return self._fit(X, y, sample_weight, **fit_params)

    def _lock(self) -> threading.RLock:
        """The estimator's lock: a fit and a prediction from another thread wait for each other.

        Without it, ``predict`` from another thread while ``fit`` runs would see a model in
        the middle of being built (and switch dropout off in the middle of training). The
        lock is re-entrant: a callback of the fit may predict. It is never saved or cloned.
        """
        lock = self.__dict__.get("_estimator_lock")
        if lock is None:
            with _LOCK_GUARD:
                lock = self.__dict__.setdefault("_estimator_lock", threading.RLock())
        return lock  # type: ignore[no-any-return]

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
        reject_unmonitorable_callbacks(self)
        try:
            self.classes_ = classes
            self.n_classes_ = len(classes)
            self._set_runtime(Runtime.resolve(self.device, self.precision))
            self._seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            checkpoint = self._checkpoint
            self._base_checkpoint_ = checkpoint.name  # saves name the base fitted on
            self._check_max_length(checkpoint.max_positions)
            # Read the weights now, outside the seeded training region: loading draws from
            # torch's random generator, which would make a first fit differ from the next.
            checkpoint.template(self._head, self._head_outputs())
            self.tokenizer_ = checkpoint.tokenizer
            # Held by the fitted estimator, so predicting never needs the checkpoint files again.
            self._tokenize = checkpoint.tokenize
            self._check_validation_split(label_indices)
            self._tuning_mode_for_fit().bind_checkpoint(self, checkpoint)
            weights = text_weights(sample_weight, self._class_weight(), classes, label_indices)
            self._prepare_fit(texts, label_indices)
        except BaseException:
            self._forget_fit()
            raise
        return self._train(texts, label_indices, weights=weights)

    def _tuning_mode_for_fit(self) -> Any:
        return tuning_mode(getattr(self, "tuning", "full"))

    def _class_weight(self) -> Any:
        """The ``class_weight`` parameter (None for an estimator without one)."""
        return getattr(self, "class_weight", None)

    def _callback_settings(self) -> tuple[Any, ...]:
        # The parameters the callbacks are built from: a change rebuilds them in partial_fit.
        return (id(self.callbacks), self.warmup_ratio, self.verbose)

    def _head_outputs(self) -> int | None:
        """Outputs of the head the checkpoint is loaded with (None: the checkpoint's own)."""
        return None

    def _prepare_fit(self, texts: list[str], label_indices: np.ndarray) -> None:
        """What an estimator learns before training (nothing by default)."""

    def _training_dataset(
        self, texts: list[str], label_indices: np.ndarray, weights: np.ndarray | None
    ) -> TextDataset:
        """The rows one training call runs on, each weighted by its text's weight."""
        dataset = self._tuning_mode().dataset(self, texts, label_indices.astype(np.int64))
        return dataset.weighted(weights)  # type: ignore[no-any-return]

    def _run_training(
        self, texts: list[str], label_indices: np.ndarray, weights: np.ndarray | None
    ) -> None:
        """Skorch's loop over ``max_epochs`` epochs, seeded by the fit and the epochs so far."""
        net = self._net
        net.interrupted_ = False
        dataset = self._training_dataset(texts, label_indices, weights)
        with torch.random.fork_rng(devices=self.runtime_.cuda_devices):
            torch.manual_seed(self._seed_ + len(net.history_ or ()))
            net.partial_fit(dataset, None, _routing_method="fit")

    def _train(
        self, texts: list[str], label_indices: np.ndarray, weights: np.ndarray | None = None
    ) -> BaseTextClassifier:
        """Initialize from the checkpoint and train; on failure, leave the estimator unfitted."""
        try:
            self.__dict__["_tuning_fitted_"] = getattr(self, "tuning", "full")
            net = self._make_net()
            with torch.random.fork_rng(devices=self.runtime_.cuda_devices):
                torch.manual_seed(self._seed_)
                net.initialize()
            self._net = net
            self._callbacks_used_ = self._callback_settings()
            if self.max_epochs > 0:
                self._tuning_mode().train(self, texts, label_indices, weights)
        except torch.OutOfMemoryError as error:
            self._forget_fit()
            raise out_of_memory_error(error, self, "fit") from error
        except BaseException:
            self._forget_fit()
            raise
        params = self.get_params(deep=False)
        self.__dict__["_fitted_params_"] = {name: params[name] for name in self._refit_only}
        # The last step's gradients are no longer needed: free their memory (a model's worth)
        # before prediction; the optimizer keeps its state for partial_fit.
        net.optimizer_.zero_grad(set_to_none=True)
        # A fitted model predicts: no dropout from here on (training steps switch it back on).
        net.module_.eval()
        if net.interrupted_:
            report_interruption(self)
        return self

    def _adopt_fitted(
        self,
        *,
        classes: np.ndarray,
        seed: int,
        tokenizer: Any,
        tokenize: Any,
        module: torch.nn.Module,
        history: Any,
        runtime: Runtime,
        fitted_params: dict[str, Any],
    ) -> None:
        """Become the fitted estimator a saved state describes (persistence's inverse of fit)."""
        self.classes_ = classes
        self.n_classes_ = len(classes)
        self._seed_ = seed
        self.tokenizer_ = tokenizer
        self._tokenize = tokenize
        self._set_runtime(runtime)
        self.__dict__["_tuning_fitted_"] = getattr(self, "tuning", "full")
        self.__dict__["_fitted_params_"] = fitted_params
        net = self._make_net()
        # The module as saved; skorch's other components are built when training resumes.
        # Through __dict__: skorch's __setattr__ refuses modules set outside its initialize steps.
        vars(net).update(
            module_=module,
            criterion_=torch.nn.CrossEntropyLoss(reduction="none"),
            history_=history,
            _modules=["module"],
            _criteria=["criterion"],
            _optimizers=[],
            initialized_=True,
        )
        self._net = net

    def _make_net(self) -> TextNet:
        """A new skorch net of ``_net_class`` for this estimator."""
        return self._net_class(self)

    def _forget_fit(self) -> None:
        """Drop every fitted attribute, so a failed fit never leaves a half-fitted estimator."""
        state = vars(self)
        for name in [name for name in state if name.endswith("_") and not name.startswith("__")]:
            del state[name]
        state.pop("_net", None)
        state.pop("_tokenize", None)

    def _non_finite_loss_message(self, loss: float) -> str:
        """What to change when the training loss is NaN or infinite (float32 named only if new)."""
        history = self._net.history_ if getattr(self, "_net", None) is not None else ()
        precision = self.runtime_.precision
        advice = f"Lower the learning rate (lr={self.lr}), e.g. ten times"
        if precision != "float32":
            advice += " or use precision='float32'"
        return (
            f"The training loss became {loss} at epoch {len(history or ()) or 1} "
            f"(precision={precision!r}). {advice}; if it stays non-finite, check sample_weight "
            f"and the checkpoint's weights for huge or non-finite values."
        )

    def _tokenization_spec(self) -> TokenizationSpec:
        """How this estimator's texts are tokenized (the cache key of their token ids)."""
        return TokenizationSpec(self.max_length, **self._truncation_params())

    def _truncation_params(self) -> dict[str, Any]:
        """The ``truncation`` and ``window_stride`` parameters, as the spec takes them."""
        return {
            "truncation": getattr(self, "truncation", "head"),
            "window_stride": getattr(self, "window_stride", None),
        }

    def _rows(self, texts: list[str]) -> Rows:
        """The texts' rows: token ids with their text's index (several per text for windows)."""
        return text_rows(self._tokenize(texts, self._tokenization_spec()))

    def _make_dataset(self, rows: Rows, y: Any) -> TextDataset:
        """Rows for training or prediction: by default, one class index per row."""
        targets = None if y is None else np.asarray(y)[rows.text_index]
        return TextDataset.from_rows(rows, targets)

    def _row_losses(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Per-row cross-entropy, in float32 whatever the forward precision."""
        return torch.nn.functional.cross_entropy(y_pred.float(), y_true, reduction="none")

    def _scoring_callbacks(self) -> list[tuple[str, Any]]:
        """Per-epoch scores besides the losses: accuracy of class-index targets."""
        return [
            ("train_acc", EpochAccuracy("train_acc", on_train=True)),
            ("valid_acc", EpochAccuracy("valid_acc", on_train=False)),
        ]
