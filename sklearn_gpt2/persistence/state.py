"""What a fitted estimator is, described once: ``FittedState``, and building one back.

Both codecs (the pickle state behind joblib and skops, and the safe directory format) write
a ``FittedState`` and read one back; neither looks inside an estimator. An estimator adds its
own state through one hook pair, ``_fitted_extra`` / ``_module_from_saved``; its training mode
says which model to save and which tensors that model lacks (LoRA adapters).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from skorch.history import History
from transformers import PretrainedConfig
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING,
)

from ..models.checkpoint import is_decoder, prepare_tokenizer, quiet_transformers
from ..models.families import family_of
from ..runtime import Runtime
from ..text.tokenize import CachedTokenizer, TokenCache
from .base_checkpoint import fitted_base, remember_base
from .format import FORMAT_NAME, FORMAT_VERSION

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "FittedState", "describe", "restore"]

_MODEL_MAPPINGS = {
    "sequence-classification": MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING,
    "causal-lm": MODEL_FOR_CAUSAL_LM_MAPPING,
}


@dataclass
class FittedState:
    """Everything a fitted estimator needs to predict (and to refit), in one place.

    Parameters
    ----------
    estimator : str
        Class name of the estimator.
    params : dict
        Its ``get_params(deep=False)``.
    classes : ndarray
        ``classes_``.
    seed : int
        The seed its fit drew from ``random_state``.
    history : list of dict
        Its skorch history, as JSON-able rows.
    head : {"sequence-classification", "causal-lm"}
        The kind of transformers model inside its module.
    model : PreTrainedModel
        That model (weights float32).
    tokenizer : PreTrainedTokenizerBase
        Its tokenizer.
    extra : dict
        The estimator's own state (``_fitted_extra``), JSON-able builtins.
    adapter : dict of str to Tensor or None, default=None
        Tensors the plain model lacks (``tuning="lora"``: the adapters), by their name in the
        model once the training mode has prepared it.
    """

    estimator: str
    params: dict[str, Any]
    classes: np.ndarray
    seed: int
    history: list[Any]
    head: str
    model: Any
    tokenizer: Any
    extra: dict[str, Any]
    adapter: dict[str, torch.Tensor] | None = None
    base_checkpoint: str | None = None


def describe(estimator: Any, *, with_model: bool = True) -> FittedState:
    """The :class:`FittedState` of a fitted estimator.

    ``with_model=False`` leaves the model and adapters out (``None``): for a save that stores
    only what was trained, building the savable model would be wasted work.
    """
    check_tuning_unchanged(estimator)
    model, adapter = (
        estimator._tuning_mode().saved_model(estimator.module_) if with_model else (None, None)
    )
    return FittedState(
        estimator=type(estimator).__name__,
        params=estimator.get_params(deep=False),
        classes=estimator.classes_,
        seed=int(estimator._seed_),
        history=json.loads(history_to_json(estimator.history_)),
        head=estimator._head,
        model=model,
        tokenizer=estimator.tokenizer_,
        extra=estimator._fitted_extra(),
        adapter=adapter,
        base_checkpoint=fitted_base(estimator),
    )


def check_tuning_unchanged(estimator: Any, action: str = "save") -> None:
    """Refuse to save or continue a model whose fit-defining parameters changed since its fit.

    Which parameters define what a fit built (``tuning``, ``lora_rank``, a prompt's
    ``template``...) is each estimator's ``_refit_only``; changing them needs a new ``fit``.
    """
    current = estimator.get_params(deep=False)
    fitted = estimator.__dict__.get("_fitted_params_")
    if fitted is None:
        fitted = {}
        if "tuning" in current and "_tuning_fitted_" in estimator.__dict__:
            fitted = {"tuning": estimator.__dict__["_tuning_fitted_"]}
    changed = [name for name, value in fitted.items() if current.get(name) != value]
    if changed:
        was = ", ".join(f"{name}={fitted[name]!r}" for name in changed)
        now = ", ".join(f"{name}={current.get(name)!r}" for name in changed)
        consequence = (
            "a saved copy would not load as the model it is"
            if action == "save"
            else "partial_fit continues the fitted model"
        )
        raise ValueError(
            f"This classifier was fitted with {was} but its parameters are now {now}; "
            f"{consequence}. Set them back with set_params, or call fit to start over."
        )


def restore(estimator: Any, state: FittedState, runtime: Runtime) -> None:
    """Set the fitted attributes of ``estimator`` from ``state``, with its model on ``runtime``."""
    module = estimator._module_from_saved(state.model, state.extra)
    module = estimator._tuning_mode().restore(estimator, module, state.adapter)
    prepare_tokenizer(state.tokenizer, getattr(module, "pads_left", is_decoder(state.model.config)))
    estimator._adopt_fitted(
        classes=state.classes,
        seed=int(state.seed),
        tokenizer=state.tokenizer,
        # A loaded classifier may lack its checkpoint: it tokenizes into a cache of its own.
        tokenize=CachedTokenizer(state.tokenizer, TokenCache()),
        module=module.to(runtime.device),
        history=History(state.history),
        runtime=runtime,
        fitted_params={name: state.params.get(name) for name in estimator._refit_only},
    )
    remember_base(estimator, state.base_checkpoint)


def saved_fields(fitted: FittedState) -> dict[str, Any]:
    """The fields of a fitted state that every format stores the same way (JSON-able)."""
    return {
        "estimator": fitted.estimator,
        "head": fitted.head,
        "classes": encode_classes(fitted.classes),
        "seed": fitted.seed,
        "extra": fitted.extra,
        "history": fitted.history,
        "base_checkpoint": fitted.base_checkpoint,
    }


def fitted_from_fields(
    fields: dict[str, Any],
    *,
    estimator: str,
    params: dict[str, Any],
    classes: np.ndarray,
    model: Any,
    tokenizer: Any,
    adapter: dict[str, torch.Tensor] | None,
) -> FittedState:
    """The :class:`FittedState` a save describes: its :func:`saved_fields` and what was read."""
    base = fields.get("base_checkpoint")
    return FittedState(
        estimator=estimator,
        params=params,
        classes=classes,
        seed=int(fields["seed"]),
        history=list(fields["history"]),
        head=str(fields["head"]),
        model=model,
        tokenizer=tokenizer,
        extra=dict(fields["extra"]),
        adapter=adapter,
        base_checkpoint=base if isinstance(base, str) else None,
    )


# ---------------------------------------------------------------------------- parameters
def encode_params(
    params: dict[str, Any], *, objects: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parameters as builtins, and which of them were paths or devices (to decode them).

    Paths and ``torch.device`` become strings (so skops trusts no other type, and JSON can
    hold them). With ``objects=False`` (the directory format: JSON), what JSON cannot hold is
    left out as documented (``callbacks``, a ``RandomState`` instance) or refused with the fix
    (a dict with non-string keys); with ``objects=True`` (pickles) it is kept as it is.
    """
    wrapped = {
        name: "torch.device" if isinstance(value, torch.device) else "path"
        for name, value in params.items()
        if isinstance(value, (torch.device, PurePath))
    }
    encoded: dict[str, Any] = {}
    for name, value in params.items():
        if name in wrapped:
            value = os.fspath(value) if isinstance(value, PurePath) else str(value)
        elif not objects:
            value = _json_param(name, value)
        encoded[name] = value
    return encoded, wrapped


def _json_param(name: str, value: Any) -> Any:
    if name == "callbacks":
        return None  # arbitrary objects: not saved (documented)
    if name == "device":
        return str(value)
    if name == "random_state" and not (value is None or isinstance(value, Integral)):
        return None  # a RandomState instance has no JSON form
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict) and not all(isinstance(key, str) for key in value):
        raise TypeError(
            f"save_pretrained stores {name} in JSON, whose keys are strings; "
            f"{name}={value!r} has other keys. Save with joblib, or use string labels."
        )
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"save_pretrained cannot store {name}={value!r} in JSON; use a plain number "
            f"or string, or save with joblib."
        ) from None
    return value


def decode_params(params: dict[str, Any], wrapped: dict[str, str]) -> dict[str, Any]:
    """Inverse of :func:`encode_params`: paths and devices back to their types."""
    params = dict(params)
    for name, kind in wrapped.items():
        if name not in params:
            continue
        if kind == "path":
            params[name] = Path(params[name])
        elif kind == "torch.device" and params[name] != "auto":
            params[name] = torch.device(params[name])
    return params


# ---------------------------------------------------------------------------- shared pieces
def library_versions() -> dict[str, str]:
    """Versions of the libraries a saved classifier depends on."""
    import sklearn
    import skorch
    import transformers

    from .._version import __version__

    return {
        "sklearn_gpt2": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
    }


def warn_if_versions_differ(saved: dict[str, str], source: str) -> None:
    """Warn (UserWarning) when ``saved`` library versions differ from the installed ones."""
    current = library_versions()
    differ = [
        f"{name} {saved[name]} (now {current[name]})"
        for name in current
        if name in saved and saved[name] != current[name]
    ]
    if differ:
        warnings.warn(
            f"{source} was saved with {', '.join(differ)}. It loaded, but predictions may "
            f"differ slightly and some features may not work; refit or save it again with the "
            f"current versions to be sure.",
            UserWarning,
            stacklevel=4,
        )


def encode_classes(classes: np.ndarray) -> dict[str, Any]:
    """``classes_`` as builtins plus the dtype, so str, int, bool and float labels round-trip."""
    return {
        "dtype": classes.dtype.str if classes.dtype != object else "object",
        "values": classes.tolist(),
    }


def decode_classes(encoded: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_classes`; rejects anything but scalar labels."""
    dtype = np.dtype(encoded["dtype"])
    values = encoded["values"]
    if dtype.kind not in "OUbiuf" or not isinstance(values, list):
        raise ValueError(f"unsupported classes of dtype {dtype}")
    if not all(isinstance(v, (str, bool, int, float)) for v in values):
        raise ValueError("every class must be a string, a boolean or a number")
    return np.asarray(values, dtype=dtype)


def check_finite(tensors: dict[str, torch.Tensor], where: str) -> None:
    """Refuse NaN or infinite weights, with which a model would predict NaN."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(
                f"{where} holds non-finite values (NaN or infinity) in {name}: the model would "
                f"predict NaN. Refit and save it again."
            )


def check_classes(classes: np.ndarray) -> None:
    """Refuse saved classes that are not sorted and unique, as ``fit`` makes them."""
    if len(classes) < 2 or not np.array_equal(np.unique(classes), classes):
        raise ValueError(
            f"the classes {classes.tolist()!r} are not at least two, sorted and unique, as fit "
            f"makes them"
        )


def _to_builtin(value: Any) -> Any:
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.tolist()
    return repr(value)


def history_to_json(history: Any) -> str:
    """A skorch history as JSON (numpy and torch scalars as numbers, other objects as repr)."""
    return json.dumps(list(history) if history is not None else [], default=_to_builtin)


def build_model(
    config: PretrainedConfig, weights: dict[str, torch.Tensor], source: str, head: str
) -> Any:
    """Instantiate the config's model with ``head`` and exactly ``weights``."""
    try:
        model_class = _MODEL_MAPPINGS[head][type(config)]
    except KeyError:
        raise ValueError(
            f"{source}: model type {config.model_type!r} has no {head} model in this version "
            f"of transformers."
        ) from None
    try:
        with quiet_transformers():
            model, info = model_class.from_pretrained(
                None,
                config=config,
                state_dict=weights,
                dtype=family_of(config).load_dtype,
                ignore_mismatched_sizes=True,
                output_loading_info=True,
            )
    except Exception as error:  # a deep torch/transformers error: say which file is at fault
        raise ValueError(f"{source} does not match the model config: {error}") from error
    problems = {
        "missing": sorted(info.get("missing_keys", ())),
        "unexpected": sorted(info.get("unexpected_keys", ())),
        "wrong shape": sorted(str(key[0]) for key in info.get("mismatched_keys", ())),
    }
    found = {kind: keys for kind, keys in problems.items() if keys}
    if found:
        details = "; ".join(f"{kind}: {', '.join(keys[:5])}" for kind, keys in found.items())
        raise ValueError(
            f"{source} is corrupt or incomplete: its tensors do not match the model config "
            f"({details})."
        )
    model.eval()
    return model
