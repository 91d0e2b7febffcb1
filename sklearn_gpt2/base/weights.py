"""Per-text loss weights from ``sample_weight`` and ``class_weight``, checked as sklearn does."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from sklearn.utils.validation import _check_sample_weight


def class_weights(class_weight: Any, classes: np.ndarray, label_indices: np.ndarray) -> np.ndarray:
    """One weight per class in ``classes`` (all 1 for ``None``).

    ``"balanced"`` gives ``n_samples / (n_classes * count)``, as in ``LogisticRegression``,
    counted over the classes present in ``label_indices`` (a ``partial_fit`` batch may lack
    some); a dict maps labels to weights, and labels it does not name weigh 1.
    """
    weights = np.ones(len(classes))
    if class_weight is None:
        return weights
    if isinstance(class_weight, str):  # "balanced" (the constraint table admits no other)
        counts = np.bincount(label_indices, minlength=len(classes)).astype(float)
        present = counts > 0
        weights[present] = len(label_indices) / (present.sum() * counts[present])
        return weights
    known = {label: index for index, label in enumerate(classes.tolist())}
    unknown = [label for label in class_weight if label not in known]
    if unknown:
        raise ValueError(
            f"class_weight names labels that are not in y: {unknown[:5]!r}; the classes are "
            f"{list(known)!r}. Use those labels as the keys of class_weight."
        )
    for label, weight in class_weight.items():
        if not isinstance(weight, Real) or not math.isfinite(weight) or weight < 0:
            raise ValueError(
                f"class_weight[{label!r}] must be a finite non-negative number; got {weight!r}."
            )
        weights[known[label]] = float(weight)
    return weights


def text_weights(
    sample_weight: Any,
    class_weight: Any,
    classes: np.ndarray,
    label_indices: np.ndarray,
) -> np.ndarray | None:
    """The loss weight of each text (``sample_weight`` times its class's weight), or None.

    None means every text weighs the same (no weights given), so the loss stays the plain mean.
    The weights are scaled so that the largest is 1 (the weighted mean does not change), so
    any finite float64 weights survive training's float32. Bad ``sample_weight`` (wrong
    length or shape, negative, NaN or infinite values, all zero, or ratios beyond float32)
    raises ``ValueError``.
    """
    if sample_weight is None and class_weight is None:
        return None
    n = len(label_indices)
    if sample_weight is None:
        weights = np.ones(n)
    else:
        dummy = np.empty((n, 0))  # _check_sample_weight counts samples on X
        try:
            weights = _check_sample_weight(
                sample_weight, dummy, dtype=np.float64, ensure_non_negative=True
            )
        except ValueError as error:
            raise ValueError(
                f"sample_weight must hold one finite, non-negative weight per text ({n} "
                f"texts), not all zero: {error}"
            ) from error
    # Each factor scaled to a largest value of 1 first, so their product cannot overflow.
    per_class = class_weights(class_weight, classes, label_indices)
    weights = _scaled(weights) * _scaled(per_class)[label_indices]
    largest = float(weights.max(initial=0.0))
    if not largest > 0:
        raise ValueError(
            "The sample weights (times class_weight) sum to zero: nothing would be learned. "
            "Give at least one text a positive weight."
        )
    # The loss is a weighted mean, which one common factor leaves unchanged; training reads
    # the weights in float32, where 1e-46 would become 0 (nothing learned) and 1e300
    # infinity. Scaled to a largest weight of 1, only ratios float32 cannot hold remain.
    weights = weights / largest
    tiny = float(np.finfo(np.float32).tiny)
    if weights[weights > 0].min() < tiny:
        raise ValueError(
            f"The positive sample weights (times class_weight) differ by a factor of more "
            f"than {1 / tiny:.3g}, the widest ratio the float32 loss can hold, so the "
            f"smallest would count as 0. Give those texts a weight of 0 to drop them, or "
            f"bring the weights closer together."
        )
    return weights


def _scaled(values: np.ndarray) -> np.ndarray:
    """``values`` divided by their largest (unchanged when that is 0)."""
    largest = values.max(initial=0.0)
    return values / largest if largest > 0 else values
