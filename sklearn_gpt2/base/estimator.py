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

from ..models.checkpoint import Checkpoint, load_checkpoint
from ..models.families import max_positions
from ..runtime import PRECISIONS, Runtime
from ..text.rows import Rows
from ..text.runner import combine_rows, run_rows
from ..text.spec import TokenizationSpec
from ..text.validation import check_labels, check_texts
from ..training import tuning_mode
from ..training.dataset import TextDataset
from .callbacks import EpochAccuracy, reject_unmonitorable_callbacks
from .constraints import CallbackList, Device
from .continued import ContinuedTrainingMixin
from .faults import out_of_memory_error, report_interruption
from .net import TextNet
from .persistable import PersistableMixin
from .weights import text_weights


class BaseTextClassifier(  # type: ignore[misc]
    PersistableMixin, ContinuedTrainingMixin, ClassifierMixin, BaseEstimator
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
        if net is not None:
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

    def _check_fit_params(self, fit_params: dict[str, Any]) -> None:
        # skorch would pass them to the module's forward, which takes none of them.
        if fit_params:
            raise TypeError(
                f"{type(self).__name__}.fit got unexpected keyword arguments "
                f"{sorted(fit_params)}; it takes the texts X and the labels y. Set "
                f"hyperparameters in the constructor or with set_params."
            )

    def _context_size(self) -> int | None:
        """The most tokens the fitted (or to be fitted) model reads at once."""
        net = getattr(self, "_net", None)
        if net is None or getattr(net, "module_", None) is None:
            return self._checkpoint.max_positions
        return max_positions(net.module_.model.config)

    def _longest_row(self) -> int:
        """The most tokens one row may hold (``max_length``; a prompt adds its label words)."""
        return int(self.max_length)

    def _check_max_length(self, context: int | None) -> None:
        longest = self._longest_row()
        if context is not None and longest > context:
            extra = longest - self.max_length
            what = (
                f"max_length={self.max_length}"
                if not extra
                else f"max_length={self.max_length} plus the longest label word ({extra} tokens)"
            )
            raise ValueError(
                f"{what} exceeds the model's context of {context} tokens; use "
                f"max_length <= {context - extra} (set_params(max_length=...))."
            )

    def _check_validation_split(self, label_indices: np.ndarray) -> None:
        """Refuse a ``validation_fraction`` that cannot be stratified, naming the label."""
        fraction = getattr(self, "validation_fraction", None)
        if fraction is None:
            return
        n_texts = len(label_indices)
        n_valid = math.ceil(fraction * n_texts)
        counts = np.bincount(label_indices, minlength=len(self.classes_))
        rare = int(np.argmin(counts))
        if counts[rare] < 2:
            raise ValueError(
                f"validation_fraction={fraction} holds out a stratified part "
                f"of the texts, which needs at least 2 texts of each class; class "
                f"{self.classes_[rare]!r} has {counts[rare]}. Add texts of that class or set "
                f"validation_fraction=None."
            )
        if min(n_valid, n_texts - n_valid) < len(self.classes_):
            raise ValueError(
                f"validation_fraction={fraction} of {n_texts} texts leaves "
                f"{n_valid} held out and {n_texts - n_valid} to train on, fewer than the "
                f"{len(self.classes_)} classes; use more texts or another validation_fraction."
            )

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
            net = TextNet(self)
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
        net = TextNet(self)
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

    def _forget_fit(self) -> None:
        """Drop every fitted attribute, so a failed fit never leaves a half-fitted estimator."""
        state = vars(self)
        for name in [name for name in state if name.endswith("_") and not name.startswith("__")]:
            del state[name]
        state.pop("_net", None)
        state.pop("_tokenize", None)

    def _non_finite_loss_message(self, loss: float) -> str:
        """What to change when the training loss is NaN or infinite."""
        advice = [f"lower the learning rate (lr={self.lr})"]
        if self.runtime_.precision != "float32":
            advice.append(f"use precision='float32' (now {self.runtime_.precision!r})")
        if getattr(self, "max_grad_norm", None) is None:
            advice.append("clip gradients (max_grad_norm=1.0)")
        history = self._net.history_ if getattr(self, "_net", None) is not None else ()
        return (
            f"The training loss became {loss} in epoch {len(history or ())}; {' or '.join(advice)}."
        )

    # ------------------------------------------------------------------ training pieces
    def _tokenization_spec(self) -> TokenizationSpec:
        """How this estimator's texts are tokenized (the cache key of their token ids)."""
        return TokenizationSpec(max_length=self.max_length)

    def _rows(self, texts: list[str]) -> Rows:
        """The texts' rows: token ids with their text's index (one row per text today)."""
        return Rows.one_per_text(self._tokenize(texts, self._tokenization_spec()))

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

    # ------------------------------------------------------------------ prediction
    def _proba_from_outputs(self, outputs: torch.Tensor) -> np.ndarray:
        """Probabilities (float64, rows summing to 1) from one batch of module outputs."""
        return torch.softmax(outputs.double(), dim=-1).cpu().numpy()

    def _outputs(self, module: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """What the module computes to predict from one batch (its logits by default)."""
        return module(**inputs)

    def _row_proba(self, rows: Rows) -> np.ndarray:
        """Probabilities of each row, through the one batch runner."""
        module = self._net.module_
        device = self.runtime_.device

        def engine(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
            inputs = {
                "input_ids": torch.from_numpy(input_ids).to(device),
                "attention_mask": torch.from_numpy(attention_mask).to(device),
            }
            return self._proba_from_outputs(self._outputs(module, inputs))

        pad_token_id = self.tokenizer_.pad_token_id
        return run_rows(
            rows,
            engine,
            batch_size=self.batch_size,
            pad_token_id=pad_token_id,
            pad_left=module.pads_left,
        )

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
        self._check_max_length(self._context_size())
        self._refresh_runtime()
        net = self._net
        rows = self._rows(texts)
        net.module_.eval()
        # One autocast region around all batches: autocast caches its low-precision copy of
        # each weight until the region ends, so weights are cast once per call, not per batch.
        try:
            with torch.inference_mode(), self.runtime_.autocast():
                row_proba = self._tuning_mode().row_proba(self, rows, texts)
        except torch.OutOfMemoryError as error:
            raise out_of_memory_error(error, self, "predict") from error
        if not np.isfinite(row_proba).all():
            raise ValueError(
                f"The model gave non-finite probabilities (NaN): its weights or the "
                f"checkpoint {self.model_name_or_path!r} hold NaN or infinite values. Refit "
                f"from a sound checkpoint."
            )
        return combine_rows(row_proba, rows)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of the class probabilities of texts ``X``.

        Parameters
        ----------
        X : iterable of str
            Texts to classify.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``: columns follow ``classes_``, rows the order of ``X``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

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
