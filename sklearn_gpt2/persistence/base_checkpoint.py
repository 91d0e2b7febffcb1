"""The checkpoint a fit started from: recorded by ``fit``, named by saves, never saved over.

``fit`` records where its checkpoint was (a local directory by absolute path, a hub name as
it is) in ``_base_checkpoint_``. A save by reference names that base, not the
``model_name_or_path`` of now (which ``set_params`` or a new working directory may have
changed); every save refuses a directory that holds it, which would overwrite the pretrained
weights later fits start from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: The fitted attribute holding the base checkpoint's location.
BASE_ATTRIBUTE = "_base_checkpoint_"


def location(name_or_path: str | os.PathLike[str]) -> str:
    """A local directory by absolute path; anything else (a hub name) as it is."""
    path = Path(name_or_path)
    return str(path.resolve()) if path.is_dir() else os.fspath(name_or_path)


def fitted_base(estimator: Any) -> str:
    """The checkpoint ``estimator`` was fitted on (``model_name_or_path`` for older saves)."""
    recorded = vars(estimator).get(BASE_ATTRIBUTE)
    return recorded if isinstance(recorded, str) else location(estimator.model_name_or_path)


def remember_base(estimator: Any, base: Any) -> None:
    """Record a loaded classifier's base checkpoint (ignored unless it is a string)."""
    if isinstance(base, str):
        vars(estimator)[BASE_ATTRIBUTE] = base


def check_not_into_base(estimator: Any, directory: str | os.PathLike[str]) -> None:
    """Refuse to save into a directory holding the checkpoint the model was fitted from."""
    target = Path(directory).resolve()
    candidates = {fitted_base(estimator), location(estimator.model_name_or_path)}
    for candidate in sorted(candidates):
        checkpoint = Path(candidate)
        if not checkpoint.is_dir():
            continue  # a hub name: its files live in the hub cache
        checkpoint = checkpoint.resolve()
        if checkpoint == target or checkpoint.is_relative_to(target):
            raise ValueError(
                f"Saving into {os.fspath(directory)!r} would overwrite the checkpoint "
                f"{str(checkpoint)!r} this classifier was fitted from (or the directory that "
                f"holds it): its pretrained weights would be lost, and every later fit from it "
                f"would start from this model. Save into another directory."
            )
