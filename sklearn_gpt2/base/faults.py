"""What the classifier does when training is interrupted or runs out of memory.

* **Ctrl-C (KeyboardInterrupt) during fit.** skorch stops the loop and ``fit`` returns. If at
  least one batch was trained, the classifier keeps the weights trained so far, the last
  ``history_`` row gets ``interrupted=True`` and a warning says how many batches were trained.
  If no batch was trained, the estimator is left unfitted and the ``KeyboardInterrupt`` is
  raised again. A stop at an epoch boundary (what skorch's ``EarlyStopping`` does) is not an
  interruption: the epochs it kept are complete.
* **Out of memory** (``torch.OutOfMemoryError``) in ``fit`` or ``predict``: the error is raised
  again with advice (smaller ``batch_size`` or ``max_length``, a 16-bit precision); a failed
  ``fit`` leaves the estimator unfitted. The batch size is not lowered automatically: a
  silently different batch size would change the training the user asked for.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch


def trained_batches(history: Any) -> int:
    """Number of optimizer steps recorded in a skorch history."""
    return sum("train_loss" in batch for row in history for batch in row.get("batches", ()))


def report_interruption(estimator: Any) -> None:
    """After a fit that skorch ended on KeyboardInterrupt: warn, or unfit and re-raise.

    Parameters
    ----------
    estimator : GPT2SequenceClassifier
        The estimator whose ``fit`` just returned from skorch's loop.
    """
    history = estimator.history_
    if history and "train_batch_count" in history[-1]:
        return  # stopped between epochs (e.g. early stopping): nothing is half-done
    n_batches = trained_batches(history)
    if n_batches == 0:
        estimator._forget_fit()
        raise KeyboardInterrupt("fit was interrupted before any batch was trained")
    history.record("interrupted", True)
    warnings.warn(
        f"Training was interrupted (KeyboardInterrupt) in epoch {len(history)} of "
        f"{estimator.max_epochs}, after {n_batches} trained batches. The classifier keeps the "
        f"weights trained so far; history_[-1]['interrupted'] is True. Call fit again to "
        f"train from the start.",
        UserWarning,
        stacklevel=3,
    )


def out_of_memory_error(
    error: BaseException, estimator: Any, during: str
) -> torch.OutOfMemoryError:
    """An out-of-memory error that says what to change.

    Parameters
    ----------
    error : torch.OutOfMemoryError
        The original error.
    estimator : GPT2SequenceClassifier
        The estimator that ran out of memory.
    during : {"fit", "predict"}
        What it was doing.
    """
    runtime = getattr(estimator, "runtime_", None)
    device = estimator.device if runtime is None else runtime.device
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    advice = [
        f"a smaller batch_size (now {estimator.batch_size})",
        f"a smaller max_length (now {estimator.max_length}; memory grows with the longest "
        f"text of a batch)",
    ]
    if estimator.precision in ("auto", "float32"):
        advice.append("precision='bfloat16' (or 'float16' on older GPUs), which halves activations")
    if during == "fit":
        advice.append("or a smaller model")
    return torch.OutOfMemoryError(
        f"Out of memory on {device} during {during} with batch_size={estimator.batch_size}, "
        f"max_length={estimator.max_length}, precision={estimator.precision!r}. Try "
        f"{'; '.join(advice)}. Free memory held by other models or processes first. "
        f"Original error: {error}"
    )
