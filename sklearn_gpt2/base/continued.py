"""``partial_fit``: more training of a fitted estimator, all or nothing, following set_params.

Every check that ``fit`` makes comes first; the weights, optimizer state and history are
snapshotted, and restored if anything fails during training (an error, a non-finite loss, an
interrupt, out of memory). Parameters changed with ``set_params`` apply to the call.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from ..persistence.state import check_tuning_unchanged
from ..runtime import Runtime
from ..text.validation import check_labels, check_texts
from .callbacks import reject_unmonitorable_callbacks
from .faults import out_of_memory_error
from .weights import text_weights


class ContinuedTrainingMixin:
    """``partial_fit`` for the package's estimators (mixed into ``BaseTextClassifier``)."""

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None, **fit_params: Any
    ) -> Any:
        """Train the fitted model for ``max_epochs`` more epochs, without starting over.

        Unlike :meth:`fit`, the weights are not reset to the checkpoint; the learning-rate
        schedule restarts from ``lr``. Parameters changed with ``set_params`` since the last
        call (``lr``, ``weight_decay``, ``max_grad_norm``, ``device``, ``precision``,
        ``batch_size``, ``max_epochs``, ...) apply. An unfitted estimator is fitted from the
        checkpoint, as by :meth:`fit`. A loaded classifier (joblib or :meth:`from_pretrained`)
        starts with a fresh optimizer, since its optimizer state is not saved.

        The call is all or nothing: every input is checked before anything changes, and if
        training fails (an error, a non-finite loss, an interrupt, out of memory) the weights,
        optimizer state and history are restored to what they were before the call.

        Parameters
        ----------
        X : iterable of str
            Training texts.
        y : array-like of shape (n_samples,)
            Labels, each one of ``classes_``.
        classes : array-like, default=None
            Accepted for scikit-learn compatibility; when given, it must equal ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each text's loss, as in :meth:`fit`.
        **fit_params : dict
            Checked as by :meth:`fit`.

        Returns
        -------
        self : estimator
            The estimator, trained further.
        """
        with self._lock():
            return self._partial_fit(X, y, classes, sample_weight, **fit_params)

    def _partial_fit(
        self, X: Any, y: Any, classes: Any, sample_weight: Any, **fit_params: Any
    ) -> Any:
        if not self.__sklearn_is_fitted__():
            if classes is not None:
                missing = sorted(
                    set(np.unique(np.asarray(classes)).tolist())
                    - set(np.unique(check_labels(y, len(check_texts(X)))).tolist()),
                    key=str,
                )
                if missing:
                    raise ValueError(
                        f"The first partial_fit learns classes_ from y, which has no text of "
                        f"the classes {missing!r} named in classes=. Include at least one text "
                        f"of every class in the first call."
                    )
            return self.fit(X, y, sample_weight=sample_weight, **fit_params)
        self._check_params()
        self._check_fit_params(fit_params)
        texts = check_texts(X)
        labels = check_labels(y, len(texts), estimator=type(self).__name__)
        known = self.classes_.tolist()
        if classes is not None and sorted(np.unique(np.asarray(classes)).tolist()) != known:
            raise ValueError(f"classes={list(classes)!r} differs from classes_={known!r}.")
        unknown = sorted({label for label in labels.tolist() if label not in known}, key=str)
        if unknown:
            raise ValueError(
                f"y contains labels the classifier was not fitted with: {unknown[:5]!r}. "
                f"partial_fit continues training on classes_={known!r}; call fit to start "
                f"over with new classes."
            )
        check_tuning_unchanged(self, action="partial_fit")
        label_indices = np.searchsorted(self.classes_, labels)
        weights = text_weights(sample_weight, self._class_weight(), self.classes_, label_indices)
        self._check_max_length(self._context_size())
        self._check_validation_split(label_indices)
        reject_unmonitorable_callbacks(self)
        Runtime.resolve(self.device, self.precision)  # a bad device fails before any change
        snapshot = self._snapshot()
        net = self._net
        try:
            self._refresh_runtime()
            if getattr(net, "optimizer_", None) is None:
                # A loaded classifier: its optimizer and callbacks were not saved.
                net._initialize_virtual_params()
                net._initialize_callbacks()
                net._initialize_optimizer()
                self._callbacks_used_ = self._callback_settings()
            self._follow_params()
            self._run_training(texts, label_indices, weights)
            if net.interrupted_:
                raise KeyboardInterrupt("partial_fit was interrupted")
        except BaseException as error:
            self._restore(snapshot)
            if isinstance(error, torch.OutOfMemoryError):
                raise out_of_memory_error(error, self, "fit") from error
            if _can_rewrap(error):
                note = "partial_fit failed; the classifier is as it was before the call."
                raise type(error)(f"{error}\n{note}") from error
            raise
        net.optimizer_.zero_grad(set_to_none=True)
        return self

    def _snapshot(self) -> dict[str, Any]:
        """What a failed ``partial_fit`` restores: weights, optimizer state, history, runtime."""
        net = self._net
        optimizer = getattr(net, "optimizer_", None)
        return {
            "weights": {k: v.detach().clone() for k, v in net.module_.state_dict().items()},
            "optimizer": None if optimizer is None else copy.deepcopy(optimizer.state_dict()),
            "history": copy.deepcopy(net.history_),
            "runtime": (self.runtime_, getattr(self, "_runtime_params_", None)),
        }

    def _restore(self, snapshot: dict[str, Any]) -> None:
        net = self._net
        runtime, requested = snapshot["runtime"]
        net.module_.to(runtime.device)
        net.module_.load_state_dict(snapshot["weights"])
        if snapshot["optimizer"] is None:
            vars(net).pop("optimizer_", None)
            net._optimizers = []
        else:
            net.optimizer_.load_state_dict(snapshot["optimizer"])
        net.history_ = snapshot["history"]
        self.runtime_ = runtime
        self._runtime_params_ = requested
        net.device = str(runtime.device)

    def _follow_params(self) -> None:
        """Apply ``callbacks``, ``lr``, ``weight_decay`` and the runtime as they are now."""
        net = self._net
        if self._callback_settings() != getattr(self, "_callbacks_used_", None):
            net._initialize_callbacks()
            self._callbacks_used_ = self._callback_settings()
        decay_group, _ = net.optimizer_.param_groups
        decay_group["weight_decay"] = self.weight_decay
        for group in net.optimizer_.param_groups:
            # The LR schedule starts from initial_lr: it must be the current lr.
            group["lr"] = group["initial_lr"] = self.lr
        device = self.runtime_.device
        for state in net.optimizer_.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and key != "step":
                    state[key] = value.to(device)
        net.grad_scaler_ = self.runtime_.grad_scaler()


def _can_rewrap(error: BaseException) -> bool:
    """Whether ``type(error)(message)`` rebuilds the error (plain exceptions do)."""
    return type(error) in (
        ValueError,
        TypeError,
        RuntimeError,
        FloatingPointError,
        KeyboardInterrupt,
        OSError,
    )
