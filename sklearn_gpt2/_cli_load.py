"""The command line's predict-only mode: load a saved classifier (joblib file or directory).

``--load`` takes what ``--save`` (a joblib file) or ``--save-dir`` (a ``save_pretrained``
directory) wrote, or what a Python program saved the same ways. A directory names the
estimator that wrote it in its manifest, so the prompt classifier loads as well as the
sequence classifier. Nothing is trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._cli_errors import CliError

__all__ = ["load_saved"]

ESTIMATORS = ("GPT2SequenceClassifier", "GPT2PromptClassifier")


def _estimator_class(directory: Path, manifest_name: str) -> Any:
    path = directory / manifest_name
    if not path.is_file():
        raise CliError(
            f"--load {directory} is a directory without {manifest_name}, so not one written "
            f"by --save-dir or save_pretrained. To train from a checkpoint directory, pass it "
            f"as --model with --train."
        )
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("estimator", ESTIMATORS[0])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise CliError(
            f"--load {directory}: {path} is corrupt or unreadable ({error}); save the model again."
        ) from None
    if name not in ESTIMATORS:
        raise CliError(f"--load {directory}: {path} names an unknown estimator {name!r}.")
    if name == "GPT2PromptClassifier":
        from ._prompt_classifier import GPT2PromptClassifier

        return GPT2PromptClassifier
    from ._classifier import GPT2SequenceClassifier

    return GPT2SequenceClassifier


def load_saved(path: Path) -> Any:
    """Load the fitted classifier at ``path``.

    Parameters
    ----------
    path : pathlib.Path
        A joblib file or a ``save_pretrained`` directory.

    Returns
    -------
    classifier : GPT2SequenceClassifier or GPT2PromptClassifier
        The fitted classifier.

    Raises
    ------
    CliError, ValueError or OSError
        Saying what is wrong with ``path`` and how to fix it.
    """
    if path.is_dir():
        from .persistence.directory_codec import MANIFEST

        return _estimator_class(path, MANIFEST).from_pretrained(path)
    if not path.is_file():
        raise CliError(f"--load {path}: no such file or directory.")
    import pickle

    import joblib

    try:
        model = joblib.load(path)
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, AttributeError) as error:
        raise CliError(
            f"--load {path} is not a joblib file written by --save or joblib.dump, or it is "
            f"truncated ({type(error).__name__}: {error}); save the model again."
        ) from None
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise CliError(
            f"--load {path} holds a {type(model).__name__}, not a fitted classifier of "
            f"sklearn-gpt2; give a file written by --save."
        )
    return model
