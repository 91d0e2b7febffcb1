"""Score a large collection of texts on a Dask cluster: ``predict_proba`` and ``predict``.

The texts are a ``dask.dataframe`` Series or a ``dask.bag`` of strings; each partition is
predicted where it lives, and the result is a Dask array in the input's order. The fitted
classifier (a torch estimator or an ``OnnxTextClassifier``) is scattered to every worker once
and each partition's task refers to that one copy, so it is not serialized per partition.
Needs ``dask`` (and ``distributed`` for a cluster): ``pip install "sklearn-gpt2[dask]"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _import_dask() -> Any:
    try:
        import dask
        import dask.array
    except ImportError:
        raise ImportError("Scoring on Dask needs dask: pip install 'sklearn-gpt2[dask]'.") from None
    return dask


def _client() -> Any:
    """The current ``distributed`` client, or None (Dask's local schedulers)."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


def _partitions(texts: Any) -> list[Any]:
    """The delayed partitions of a Series or a bag of texts, in order."""
    import dask.bag
    import dask.dataframe

    if isinstance(texts, dask.bag.Bag):
        return list(texts.to_delayed())
    if isinstance(texts, dask.dataframe.Series):
        return list(texts.to_delayed())
    if isinstance(texts, dask.dataframe.DataFrame):
        raise TypeError("texts is a Dask DataFrame; pass the column of texts, e.g. frame['text'].")
    raise TypeError(
        f"texts must be a dask.dataframe Series or a dask.bag of strings; got "
        f"{type(texts).__name__}. For texts in memory, call estimator.predict_proba(texts)."
    )


def _partition_proba(partition: Any, estimator: Any) -> np.ndarray:
    texts = partition.tolist() if hasattr(partition, "tolist") else list(partition)
    if not texts:
        return np.empty((0, len(estimator.classes_)))
    return np.asarray(estimator.predict_proba(texts), dtype=np.float64)


def _labels(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return classes[np.argmax(proba, axis=1)]  # type: ignore[no-any-return]


def predict_proba(estimator: Any, texts: Any) -> Any:
    """Class probabilities of a Dask collection of texts, as a Dask array.

    Parameters
    ----------
    estimator : fitted classifier
        A fitted ``GPT2SequenceClassifier``, ``GPT2PromptClassifier`` or
        ``OnnxTextClassifier`` (anything with ``predict_proba`` and ``classes_``).
    texts : dask.dataframe.Series or dask.bag.Bag of str
        The texts, in any number of partitions.

    Returns
    -------
    proba : dask.array.Array of shape (n_texts, n_classes)
        Rows in the order of ``texts``, columns following ``estimator.classes_``; one chunk
        per partition (of unknown length until computed).
    """
    dask = _import_dask()
    n_classes = len(estimator.classes_)
    partitions = _partitions(texts)
    client = _client()
    if client is not None:
        # One copy per worker, sent now; every task refers to it by key.
        model = client.scatter(estimator, broadcast=True, hash=False)
    else:
        model = dask.delayed(estimator, pure=True)
    chunks = [
        dask.array.from_delayed(
            dask.delayed(_partition_proba, pure=True)(partition, model),
            shape=(np.nan, n_classes),
            dtype=np.float64,
        )
        for partition in partitions
    ]
    return dask.array.concatenate(chunks, axis=0)


def predict(estimator: Any, texts: Any) -> Any:
    """Predicted labels of a Dask collection of texts, as a Dask array.

    Parameters
    ----------
    estimator : fitted classifier
        As for :func:`predict_proba`.
    texts : dask.dataframe.Series or dask.bag.Bag of str
        The texts.

    Returns
    -------
    labels : dask.array.Array of shape (n_texts,)
        Labels from ``estimator.classes_``, in the order of ``texts``.
    """
    proba = predict_proba(estimator, texts)
    classes = np.asarray(estimator.classes_)
    return proba.map_blocks(_labels, classes, drop_axis=1, dtype=classes.dtype)
