"""Saving and loading shared by every estimator: pickling, save_pretrained, from_pretrained.

The estimator describes its fitted state once (see :mod:`sklearn_gpt2.persistence.state`);
this mixin hands it to the pickle codec and the directory codec, and declares the hooks an
estimator fills in with what it adds to that state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted


class PersistableMixin:
    """``__getstate__``/``__setstate__``, ``save_pretrained`` and ``from_pretrained``."""

    def __getstate__(self) -> dict[str, Any]:
        # Weights once, as CPU numpy arrays, with the config and tokenizer files; no optimizer
        # state. See persistence.pickle_codec and docs/persistence.md.
        from ..persistence.pickle_codec import get_state

        return get_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        from ..persistence.pickle_codec import set_state

        set_state(self, state)

    def save_pretrained(self, directory: str | os.PathLike[str], *, base: str = "include") -> Path:
        """Save the fitted classifier to ``directory`` in a format that needs no pickle.

        The directory holds the weights (``model.safetensors``), the model config (whose
        ``id2label`` names ``classes_``), the tokenizer files, and ``sklearn_gpt2.json`` with
        the hyperparameters (``callbacks`` excepted), ``classes_``, the training history, the
        library versions, a format version and a SHA-256 checksum of every file. Plain
        transformers opens it with its ``AutoModelFor...`` class and ``AutoTokenizer``
        (with ``tuning="lora"``, as the backbone without its adapters, which are a peft
        adapter directory in ``adapter/``: ``peft.PeftModel.from_pretrained(model,
        directory / "adapter")`` adds them).

        Parameters
        ----------
        directory : str or path-like
            Where to write; created if needed. Files of an earlier save are overwritten.
        base : {"include", "reference"}, default="include"
            ``"include"`` writes the whole model. ``"reference"`` (``tuning="head"`` or
            ``"lora"`` only) writes only what was trained (the head's ``trained.safetensors``,
            or the adapters and head as a peft adapter directory) with the name of the base
            checkpoint the model was fitted on and a SHA-256 fingerprint of its weights: a
            few MB instead of the whole model. Loading it needs that base checkpoint,
            unchanged.

        Returns
        -------
        directory : pathlib.Path
            The directory written, for :meth:`from_pretrained`.
        """
        from ..persistence.directory import save

        check_is_fitted(self)
        return save(self, directory, base)

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None
    ) -> Any:
        """Load a classifier written by :meth:`save_pretrained`, without unpickling anything.

        The model goes to the GPU when ``device="auto"`` and one is present; a model saved for
        a GPU loads on the CPU, with a warning, where there is none. Truncated, modified or
        missing files raise ``ValueError`` or ``FileNotFoundError`` naming the file.

        Parameters
        ----------
        directory : str or path-like
            A directory written by :meth:`save_pretrained`.
        base : str or path-like, default=None
            For a directory saved with ``base="reference"``: where the base checkpoint is now
            (by default, its ``model_name_or_path`` when saved). Its weights must be the ones
            the classifier was trained on; a different base is refused, naming the expected one.

        Returns
        -------
        classifier : estimator of this class
            A fitted classifier whose ``predict_proba`` equals the saved one's.
        """
        from ..persistence.directory import load

        return load(cls, directory, base)

    def _fitted_extra(self) -> dict[str, Any]:
        """The estimator's own fitted state, as JSON-able builtins (saved by both codecs)."""
        return {}

    def _module_from_saved(self, model: Any, extra: dict[str, Any]) -> torch.nn.Module:
        """Rebuild ``module_`` around a loaded transformers ``model`` (inverse of the above)."""
        raise NotImplementedError

    def _check_saved_model(
        self, model: Any, classes: np.ndarray, manifest: str, weights: str
    ) -> None:
        """Refuse a saved model that cannot be this estimator's (nothing to check by default)."""
