"""Progress display for the command line, from outside the estimator: folds and prediction chunks.

The estimator's own ``verbose`` shows the epochs and batches of a fit. What spans several
fits or calls (cross-validation folds, predicting a large file in chunks) is shown here with
tqdm bars on standard error: a skorch callback advances the cross-validation bar after each
training batch, so nothing is added inside the estimator's training loop.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
from skorch.callbacks import Callback
from tqdm.auto import tqdm

__all__ = ["PREDICT_CHUNK", "BatchProgress", "fit_batches", "predict_proba_in_chunks", "wanted"]

# Texts per predict_proba call when predicting a file. Always the same, shown or not, so the
# output does not depend on whether a terminal was attached; large enough that sorting by
# length within a chunk keeps batches well filled.
PREDICT_CHUNK = 1024


def wanted(*, verbose: bool, quiet: bool) -> bool:
    """Whether to show progress: on a terminal by default, in scripts only with ``--verbose``.

    Parameters
    ----------
    verbose : bool
        ``--verbose`` was given: show progress even when standard output is not a terminal.
    quiet : bool
        ``--quiet`` was given: never show progress.

    Returns
    -------
    show : bool
        True to show progress bars and the per-epoch log.
    """
    if quiet:
        return False
    return verbose or sys.stdout.isatty()


class BatchProgress(Callback):  # type: ignore[misc]
    """Advance a tqdm bar by one after each training batch.

    Parameters
    ----------
    bar : tqdm.tqdm
        The bar to advance; it is shared by the fits of all folds.
    """

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def on_batch_end(self, net: Any, training: bool = False, **kwargs: Any) -> None:
        if training:
            self.bar.update(1)


def fit_batches(n_texts: int, batch_size: int, max_epochs: int) -> int:
    """Training batches of one fit on ``n_texts`` texts (the bar's share of a fold).

    Parameters
    ----------
    n_texts : int
        Texts in the training fold.
    batch_size : int
        The estimator's ``batch_size``.
    max_epochs : int
        The estimator's ``max_epochs``.

    Returns
    -------
    batches : int
        ``ceil(n_texts / batch_size) * max_epochs``.
    """
    return math.ceil(n_texts / batch_size) * max_epochs


def predict_proba_in_chunks(clf: Any, texts: list[str], *, show: bool) -> np.ndarray:
    """``clf.predict_proba(texts)``, ``PREDICT_CHUNK`` texts at a time, with a bar over texts.

    Parameters
    ----------
    clf : GPT2SequenceClassifier
        A fitted classifier.
    texts : list of str
        The texts to classify.
    show : bool
        Show the progress bar.

    Returns
    -------
    proba : ndarray of shape (n_texts, n_classes)
        Rows in the order of ``texts``.
    """
    parts = []
    with tqdm(
        total=len(texts), desc="Predicting", unit="text", disable=not show, file=sys.stderr
    ) as bar:
        for start in range(0, len(texts), PREDICT_CHUNK):
            chunk = texts[start : start + PREDICT_CHUNK]
            parts.append(clf.predict_proba(chunk))
            bar.update(len(chunk))
    return np.concatenate(parts)
