"""A classifier's labels, log-probabilities and accuracy, from its ``predict_proba`` (no torch).

The estimators and the torch-free ``OnnxTextClassifier`` share these methods: each defines
``predict_proba`` and ``classes_``, and the rest follows the same way for both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score

from .validation import check_labels


class PredictionsFromProbaMixin:
    """``predict_log_proba``, ``predict`` and ``score`` from ``predict_proba`` and ``classes_``."""

    classes_: np.ndarray
    predict_proba: Any  # each classifier's own

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
            return np.log(self.predict_proba(X))  # type: ignore[no-any-return]

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
        proba = self.predict_proba(X)  # first: it says when the classifier is not fitted
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
            Accuracy: the (weighted) fraction of texts whose predicted label equals ``y``.
        """
        predicted = self.predict(X)
        labels = check_labels(y, len(predicted), estimator=type(self).__name__)
        return float(accuracy_score(labels, predicted, sample_weight=sample_weight))
