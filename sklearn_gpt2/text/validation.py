"""Checks on user input: texts ``X`` and labels ``y``, with messages that say how to fix them.

Every message says what was wrong, where (the index of the first bad item) and how to fix it.
Nothing is silently dropped, reordered or converted.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.utils.multiclass import type_of_target


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return bool(np.isnan(value))
    return _is_pandas_missing(value)


def _is_pandas_missing(value: Any) -> bool:
    # pandas.NA and pandas.NaT are missing values without being floats.
    return type(value).__name__ in {"NAType", "NaTType"}


def check_texts(X: Any, *, name: str = "X") -> list[str]:
    """Return ``X`` as a list of ``str``, or raise a clear error.

    Parameters
    ----------
    X : iterable of str
        A list, tuple, 1-D numpy array or pandas Series of texts.
    name : str, default="X"
        How the input is called in error messages.

    Returns
    -------
    texts : list of str
        The same texts, in the same order.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"Iterable over raw text documents expected, {type(X).__name__} object received. "
            f"Wrap a single text in a list, e.g. clf.predict([text])."
        )
    if hasattr(X, "ndim") and getattr(X, "ndim", 1) != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one text per sample); got an array of shape "
            f"{getattr(X, 'shape', '?')}. Select the text column, e.g. df['text'], "
            f"or flatten it with np.ravel."
        )
    if not isinstance(X, Iterable):
        raise TypeError(
            f"{name} must be an iterable of strings (list, tuple, numpy array or pandas "
            f"Series); got {type(X).__name__}."
        )
    items = X.tolist() if hasattr(X, "tolist") else list(X)
    if len(items) == 0:
        raise ValueError(f"Found empty {name}: 0 texts were given; at least one text is required.")
    texts: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            texts.append(str(item))
            continue
        if _is_missing(item):
            raise ValueError(
                f"{name}[{index}] is a missing value ({item!r}); every item must be a string. "
                f"Drop those rows or fill them first, e.g. X.fillna('') with pandas "
                f"(an empty string is a valid text)."
            )
        hint = (
            " Decode bytes first, e.g. b.decode('utf-8')."
            if isinstance(item, bytes)
            else " Convert it with str() if it is meant as text, or drop that row."
        )
        raise TypeError(
            f"{name}[{index}] is of type {type(item).__name__} ({item!r:.60}); every item must "
            f"be a string.{hint}"
        )
    return texts


def check_labels(
    y: Any, n_samples: int, *, estimator: str = "GPT2SequenceClassifier"
) -> np.ndarray:
    """Return ``y`` as a 1-D numpy array of labels, or raise a clear error.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels: strings, integers or booleans.
    n_samples : int
        The number of texts the labels belong to.
    estimator : str, default="GPT2SequenceClassifier"
        The estimator's name, for error messages.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    """
    if y is None:
        raise ValueError(
            f"y is required: {estimator} is a supervised classifier. "
            "Pass one label per text, e.g. clf.fit(texts, labels)."
        )
    if isinstance(y, str):
        raise TypeError("y must be a sequence of labels, one per text; got a single string.")
    values = y.tolist() if hasattr(y, "tolist") else list(y)
    if hasattr(y, "ndim") and y.ndim != 1:
        raise ValueError(
            f"y must be one-dimensional (one label per text); got shape {y.shape}. "
            f"Multi-output and multi-label targets are not supported."
        )
    if len(values) != n_samples:
        raise ValueError(
            f"X and y have inconsistent lengths: X has {n_samples} texts but y has "
            f"{len(values)} labels. Pass exactly one label per text."
        )
    for index, value in enumerate(values):
        if _is_missing(value):
            raise ValueError(
                f"y[{index}] is a missing value ({value!r}). Every text needs a label: drop "
                f"the unlabeled rows before fitting."
            )
        if isinstance(value, (list, tuple, dict, set, np.ndarray)):
            raise ValueError(
                f"y[{index}] is a {type(value).__name__}; each label must be a single value "
                f"(multi-label targets are not supported)."
            )
    kinds = {type(v) for v in values}
    is_str = [isinstance(v, str) for v in values]
    if any(is_str) and not all(is_str):
        first = is_str.index(not is_str[0])
        raise TypeError(
            f"y mixes strings with other types (y[0] is {type(values[0]).__name__}, y[{first}] "
            f"is {type(values[first]).__name__}); use one type for all labels."
        )
    labels = np.asarray(values, dtype=object if any(is_str) else None)
    if labels.dtype == object and not any(is_str) and len(kinds) > 1:
        labels = np.asarray(values)
    target_type = type_of_target(labels, input_name="y")
    if target_type not in {"binary", "multiclass"}:
        raise ValueError(
            f"Unknown label type: {target_type!r}. {estimator} needs discrete "
            f"class labels (strings, integers or booleans), not continuous values."
        )
    return labels
