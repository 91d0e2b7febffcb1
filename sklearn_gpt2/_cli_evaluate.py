"""Cross-validated accuracy of the estimator beside TF-IDF + logistic regression, on the same folds.

The baseline tells a user what the accuracy means: a fine-tuned model that does not beat a
bag of words on the same folds has not earned its cost yet. Every fit goes through
:func:`fit_or_stop`, so that Ctrl-C stops the command instead of leaving a half-trained model
to score or save.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from tqdm.auto import tqdm

from ._cli_progress import BatchProgress, fit_batches

__all__ = ["BASELINE_NAME", "FoldScores", "baseline", "cross_validate", "fit_or_stop", "summary"]

BASELINE_NAME = "TF-IDF + LogisticRegression"


@dataclass(frozen=True)
class FoldScores:
    """Accuracy per fold of the estimator and of the baseline.

    Attributes
    ----------
    model : ndarray of shape (n_folds,)
        The estimator's accuracy on each held-out fold.
    baseline : ndarray of shape (n_folds,)
        TF-IDF + logistic regression's accuracy on the same folds.
    """

    model: np.ndarray
    baseline: np.ndarray


def fit_or_stop(clf: Any, X: Sequence[str], y: Any) -> Any:
    """Fit ``clf``; raise ``KeyboardInterrupt`` if the user interrupted the training.

    On Ctrl-C the estimator keeps the batches trained so far and warns, which suits a notebook;
    the command line would then go on to score or save a half-trained model. So the
    interruption is raised again here and the command stops.

    Parameters
    ----------
    clf : GPT2SequenceClassifier
        The estimator to fit.
    X : sequence of str
        Texts.
    y : array-like
        Labels.

    Returns
    -------
    clf : GPT2SequenceClassifier
        The fitted estimator, trained to the end.

    Raises
    ------
    KeyboardInterrupt
        If the training was interrupted.
    """
    with warnings.catch_warnings():
        # The command line says it in one line itself (and saves nothing).
        warnings.filterwarnings("ignore", "Training was interrupted", UserWarning)
        clf.fit(X, y)
    if clf.history_ and clf.history_[-1].get("interrupted", False):
        raise KeyboardInterrupt("training was interrupted")
    return clf


def baseline() -> Pipeline:
    """Return the bag-of-words baseline: TF-IDF features and logistic regression."""
    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))


def cross_validate(
    clf: Any, X: Sequence[str], y: Sequence[Any], folds: int, *, show: bool
) -> FoldScores:
    """Fit and score the estimator and the baseline on the same stratified folds.

    Parameters
    ----------
    clf : GPT2SequenceClassifier
        The unfitted estimator; each fold fits a clone.
    X : sequence of str
        Texts.
    y : sequence
        Labels.
    folds : int
        Number of stratified folds (shuffled with the estimator's ``random_state``).
    show : bool
        Show a progress bar over all folds' training batches.

    Returns
    -------
    scores : FoldScores
        Accuracy per fold of both models.
    """
    labels = np.asarray(y, dtype=object)
    cv = StratifiedKFold(folds, shuffle=True, random_state=clf.random_state)
    splits = list(cv.split(np.zeros(len(X)), labels))
    params = clf.get_params()
    batch_size, epochs = params["batch_size"], params["max_epochs"]
    total = sum(fit_batches(len(train), batch_size, epochs) for train, _ in splits)
    model_scores, baseline_scores = [], []
    first = f"Cross-validation, fold 1/{folds}"
    with tqdm(total=total, desc=first, unit="batch", disable=not show, file=sys.stderr) as bar:
        for number, (train, test) in enumerate(splits, start=1):
            bar.set_description(f"Cross-validation, fold {number}/{folds}")
            X_train, X_test = [X[i] for i in train], [X[i] for i in test]
            callbacks = [*(params["callbacks"] or []), BatchProgress(bar)]
            model = clone(clf).set_params(callbacks=callbacks, verbose=0)
            fit_or_stop(model, X_train, labels[train])
            model_scores.append(model.score(X_test, labels[test]))
            reference = baseline().fit(X_train, labels[train])
            baseline_scores.append(reference.score(X_test, labels[test]))
            bar.set_postfix(accuracy=f"{np.mean(model_scores):.3f}")
    return FoldScores(np.array(model_scores), np.array(baseline_scores))


def summary(scores: FoldScores, folds: int) -> str:
    """The lines the command line prints: mean, spread and every fold of both models.

    Parameters
    ----------
    scores : FoldScores
        From :func:`cross_validate`.
    folds : int
        Number of folds.

    Returns
    -------
    text : str
        Three lines.
    """
    lines = [f"Cross-validated accuracy ({folds} stratified folds, the same for both models):"]
    rows = [("GPT2SequenceClassifier", scores.model), (BASELINE_NAME, scores.baseline)]
    for name, values in rows:
        each = ", ".join(f"{value:.3f}" for value in values)
        lines.append(f"  {name:29} {values.mean():.3f} ± {values.std():.3f}  (folds: {each})")
    return "\n".join(lines)
