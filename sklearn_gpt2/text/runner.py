"""The one batch runner: sort rows by length, pad each batch in numpy, run it, scatter back.

Prediction (class probabilities), the head-mode feature pass and the ONNX runtime all run
rows through :func:`run_rows` with an engine of their own (a torch module, an ONNX session),
and combine the rows of a text with :func:`combine_rows`. The runner needs only numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .batching import SortedBatchSampler
from .rows import Rows, pad_batch

#: An engine: ``(input_ids, attention_mask)`` of one padded batch -> one output row per row.
Engine = Callable[[np.ndarray, np.ndarray], np.ndarray]


def run_rows(
    rows: Rows, engine: Engine, *, batch_size: int, pad_token_id: int, pad_left: bool
) -> np.ndarray:
    """Outputs of ``engine`` for every row, in the rows' order.

    Rows are batched by length (longest first, so running out of memory shows on the first
    batch) and each batch is padded to its own longest row.

    Parameters
    ----------
    rows : Rows
        Token ids and text indices.
    engine : callable
        Maps one padded batch ``(input_ids, attention_mask)`` to an array with one row per
        batch row.
    batch_size : int
        Rows per batch.
    pad_token_id : int
        Id of padded positions.
    pad_left : bool
        Pad on the left (decoders) or on the right (encoders).

    Returns
    -------
    outputs : ndarray of shape (n_rows, ...)
    """
    outputs: np.ndarray | None = None
    for batch in SortedBatchSampler(rows.lengths, batch_size):
        input_ids, attention_mask = pad_batch(
            [rows.token_ids[i] for i in batch], pad_token_id, pad_left
        )
        result = np.asarray(engine(input_ids, attention_mask))
        if outputs is None:
            outputs = np.empty((len(rows), *result.shape[1:]), dtype=result.dtype)
        outputs[batch] = result
    if outputs is None:
        return np.empty((0,))
    return outputs


def combine_rows(proba: np.ndarray, rows: Rows) -> np.ndarray:
    """Per-text probabilities from per-row probabilities, in the caller's order.

    A text of one row gets that row's probabilities unchanged. A text of several rows gets
    the mean of its rows' log-probabilities, renormalized (the geometric mean of the rows'
    distributions).

    Parameters
    ----------
    proba : ndarray of shape (n_rows, n_classes)
        Probabilities of each row.
    rows : Rows
        The rows the probabilities belong to.

    Returns
    -------
    proba : ndarray of shape (n_texts, n_classes)
    """
    counts = np.bincount(rows.text_index, minlength=rows.n_texts)
    if np.any(counts == 0):
        missing = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(f"Text {missing} gave no rows to predict from.")
    result = np.empty((rows.n_texts, proba.shape[1]), dtype=np.float64)
    if np.all(counts == 1):
        result[rows.text_index] = proba
        return result
    with np.errstate(divide="ignore"):
        log_proba = np.log(proba)
    summed = np.zeros_like(result)
    np.add.at(summed, rows.text_index, log_proba)
    mean = summed / counts[:, None]
    mean -= mean.max(axis=1, keepdims=True)
    combined = np.exp(mean)
    combined /= combined.sum(axis=1, keepdims=True)
    # A text of one row keeps that row's probabilities exactly.
    single = np.flatnonzero(counts[rows.text_index] == 1)
    combined[rows.text_index[single]] = proba[single]
    return combined
