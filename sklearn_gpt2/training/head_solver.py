"""The linear head on fixed features, solved as a convex problem (L2 chosen by validation).

A linear classification head on frozen features is multinomial logistic regression: its loss
is convex, so it has one optimum, which L-BFGS finds without a learning rate or an epoch
count. The L2 penalty is chosen by stratified k-fold validation on the features (the
weighted accuracy of the held-out folds, ties broken by their log-loss, over a path of
penalties solved from the strongest to the weakest, each started from the previous
solution), then the head is solved on every row with that penalty. Features are scaled per
dimension (and centred when the head has a bias) before solving, and the solution is mapped
back, so the head reads raw features.

The solve is deterministic, and the last :data:`REMEMBERED` solutions are kept by a digest of
their inputs: the candidates of a grid search that differ only in what the solve does not
read (``lr``, ``max_epochs``, ...) solve once per fold.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold


@dataclass(frozen=True)
class LinearHead:
    """A solved head: ``logits = features @ weight.T + bias``.

    Parameters
    ----------
    weight : ndarray of shape (n_classes, n_features)
    bias : ndarray of shape (n_classes,)
        Zeros for a head without a bias.
    penalty : float
        The L2 penalty the validation chose.
    """

    weight: np.ndarray
    bias: np.ndarray
    penalty: float


#: L2 penalties tried, half a decade apart (on per-dimension scaled features; the loss is a
#: weighted mean).
PENALTIES = tuple(float(p) for p in np.logspace(1, -5, 13))
#: Folds of the internal validation that chooses the penalty.
N_FOLDS = 5
#: Iterations of L-BFGS per solve.
MAX_ITER = 300
#: Solutions kept for inputs seen again.
REMEMBERED = 16

_SOLUTIONS: OrderedDict[bytes, LinearHead] = OrderedDict()
_SOLUTIONS_LOCK = threading.Lock()


def _loss(
    theta: torch.Tensor,
    Z: torch.Tensor,
    Y: torch.Tensor,
    w: torch.Tensor,
    penalty: float,
    intercept: bool,
) -> torch.Tensor:
    """Weighted mean cross-entropy (``w`` sums to 1) plus ``penalty / 2 * ||W||^2``."""
    n_classes, d = Y.shape[1], Z.shape[1]
    W = theta[: n_classes * d].view(n_classes, d)
    logits = _logits(theta, Z, n_classes, intercept)
    loss = -(w * (Y * torch.log_softmax(logits, dim=1)).sum(dim=1)).sum()
    return loss + 0.5 * penalty * (W * W).sum()


def _logits(theta: torch.Tensor, Z: torch.Tensor, n_classes: int, intercept: bool) -> torch.Tensor:
    d = Z.shape[1]
    logits = Z @ theta[: n_classes * d].view(n_classes, d).T
    return logits + theta[n_classes * d :] if intercept else logits


def _solve(
    Z: torch.Tensor,
    Y: torch.Tensor,
    w: torch.Tensor,
    penalty: float,
    intercept: bool,
    start: torch.Tensor,
) -> torch.Tensor:
    """The minimiser of :func:`_loss` by L-BFGS (strong Wolfe line search), from ``start``."""
    theta = start.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [theta],
        max_iter=MAX_ITER,
        tolerance_grad=1e-6,
        tolerance_change=1e-10,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _loss(theta, Z, Y, w, penalty, intercept)
        loss.backward()
        return loss

    optimizer.step(closure)
    return theta.detach()


def solve_linear_head(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    sample_weight: np.ndarray | None = None,
    intercept: bool = True,
    seed: int = 0,
) -> LinearHead:
    """Solve the L2-regularised multinomial logistic regression of ``labels`` on ``features``.

    Parameters
    ----------
    features : ndarray of shape (n_rows, n_features)
        Fixed features.
    labels : ndarray of shape (n_rows,)
        Class indices in ``range(n_classes)``.
    n_classes : int
        Outputs of the head.
    sample_weight : ndarray of shape (n_rows,), default=None
        Non-negative weight of each row's loss (``class_weight`` times ``sample_weight``).
    intercept : bool, default=True
        Whether the head has a bias (GPT-2's classification head has none).
    seed : int, default=0
        Seeds the validation folds.

    Returns
    -------
    head : LinearHead
    """
    X = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    digest = hashlib.blake2b(repr((X.shape, n_classes, intercept, seed)).encode(), digest_size=32)
    for array in (X, labels, w):
        digest.update(np.ascontiguousarray(array).tobytes())
    key = digest.digest()
    with _SOLUTIONS_LOCK:
        if key in _SOLUTIONS:
            _SOLUTIONS.move_to_end(key)
            return _SOLUTIONS[key]
    head = _solve_head(X, labels, w, n_classes, intercept, seed)
    with _SOLUTIONS_LOCK:
        _SOLUTIONS[key] = head
        while len(_SOLUTIONS) > REMEMBERED:
            _SOLUTIONS.popitem(last=False)
    return head


def _solve_head(
    X: np.ndarray, labels: np.ndarray, w: np.ndarray, n_classes: int, intercept: bool, seed: int
) -> LinearHead:
    center = X.mean(axis=0) if intercept else np.zeros(X.shape[1])
    scale = np.sqrt(((X - center) ** 2).mean(axis=0))
    scale[scale < 1e-12] = 1.0
    d = X.shape[1]
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        Z = torch.from_numpy((X - center) / scale)
        Y = torch.eye(n_classes, dtype=torch.float64)[torch.from_numpy(labels)]
        W8 = torch.from_numpy(w)
        size = n_classes * (d + int(intercept))
        penalty = _choose_penalty(Z, Y, labels, W8, intercept, seed, size)
        start = torch.zeros(size, dtype=torch.float64)
        theta = _solve(Z, Y, _normalized(W8), penalty, intercept, start).numpy()
    W = theta[: n_classes * d].reshape(n_classes, d) / scale
    b = theta[n_classes * d :] if intercept else np.zeros(n_classes)
    return LinearHead(W, b - W @ center, penalty)


def _normalized(weights: torch.Tensor) -> torch.Tensor:
    """Weights that sum to 1 (all zeros stay zeros)."""
    return weights / weights.sum().clamp_min(1e-300)


def _choose_penalty(
    Z: torch.Tensor,
    Y: torch.Tensor,
    labels: np.ndarray,
    w: torch.Tensor,
    intercept: bool,
    seed: int,
    size: int,
) -> float:
    """The penalty of :data:`PENALTIES` most accurate on the held-out folds."""
    counts = np.bincount(labels, minlength=Y.shape[1])
    n_folds = min(N_FOLDS, int(counts[counts > 0].min()))
    if n_folds < 2:  # too few texts of a class to validate
        return 1e-2
    split = StratifiedKFold(n_folds, shuffle=True, random_state=seed % (2**32))
    folds = []
    for train_rows, test_rows in split.split(np.zeros(len(labels)), labels):
        train, test = torch.from_numpy(train_rows), torch.from_numpy(test_rows)
        folds.append((train, test, _normalized(w[train]), _normalized(w[test])))
    thetas = [torch.zeros(size, dtype=torch.float64) for _ in folds]
    best, best_score, worse = PENALTIES[0], (-1.0, 0.0), 0
    for penalty in PENALTIES:
        accuracy = loss = 0.0
        for i, (train, test, train_w, test_w) in enumerate(folds):
            thetas[i] = _solve(Z[train], Y[train], train_w, penalty, intercept, thetas[i])
            with torch.no_grad():
                loss += float(_loss(thetas[i], Z[test], Y[test], test_w, 0.0, intercept))
                right = _logits(thetas[i], Z[test], Y.shape[1], intercept).argmax(dim=1)
                accuracy += float((test_w * (right == Y[test].argmax(dim=1))).sum())
        # The most accurate penalty (as LogisticRegressionCV chooses); the held-out log-loss
        # breaks ties, which a flat accuracy curve has many of.
        score = (round(accuracy, 9), -loss)
        if score > best_score:
            best, best_score, worse = penalty, score, 0
        else:
            worse += 1
            if worse == 2:  # past the best: weaker penalties only cost more iterations
                break
    return best
