"""Saving and loading a classifier: the pickle/joblib/skops state, and what formats share.

Every format holds the same things: the hyperparameters, ``classes_``, the model weights once
(float32, no optimizer state), the model config, the tokenizer files and the versions of the
libraries that wrote them. The *pickle state* (:func:`get_state` / :func:`set_state`) is made
of builtins and numpy arrays only, so joblib writes the weights as raw arrays (the file is
barely larger than the weights) and ``skops.io`` needs to trust no type but the estimator's.
The pickle-free directory format is in ``_pretrained``.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from skorch.history import History
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

from ._data import TokenCache
from ._model import SequenceClassifierModule, _prepare_tokenizer, _quiet_transformers

#: Layout version of the pickle state and of the directory manifest.
FORMAT_VERSION = 1
FORMAT_NAME = "sklearn-gpt2-classifier"


# ---------------------------------------------------------------------------- shared pieces
def library_versions() -> dict[str, str]:
    """Versions of the libraries a saved classifier depends on."""
    import sklearn
    import skorch
    import transformers

    from . import __version__

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


def _to_builtin(value: Any) -> Any:
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.tolist()
    return repr(value)


def history_to_json(history: Any) -> str:
    """A skorch history as JSON (numpy and torch scalars as numbers, other objects as repr)."""
    return json.dumps(list(history) if history is not None else [], default=_to_builtin)


def target_device(device: str, precision: str) -> tuple[torch.device, str, str]:
    """Where a loaded model goes, and the ``device``/``precision`` params it keeps.

    ``"auto"`` means a GPU when there is one. A CUDA device on a machine without CUDA falls
    back to the CPU with a warning (float16 then becomes float32, which the CPU can run).
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu"), device, precision
    resolved = torch.device(device)
    if resolved.type != "cuda":
        return resolved, device, precision
    if torch.cuda.is_available():
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            resolved = torch.device("cuda")
        return resolved, device, precision
    new_precision = "float32" if precision == "float16" else precision
    warnings.warn(
        f"The classifier was saved for device={device!r} but CUDA is not available here; it "
        f"is loaded on the CPU (device='cpu'"
        + (", precision='float32'" if new_precision != precision else "")
        + ").",
        UserWarning,
        stacklevel=4,
    )
    return torch.device("cpu"), "cpu", new_precision


def build_model(config: PretrainedConfig, weights: dict[str, torch.Tensor], source: str) -> Any:
    """Instantiate the config's sequence-classification model with exactly ``weights``."""
    try:
        model_class = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)]
    except KeyError:
        raise ValueError(
            f"{source}: model type {config.model_type!r} has no sequence-classification model "
            f"in this version of transformers."
        ) from None
    try:
        with _quiet_transformers():
            model, info = model_class.from_pretrained(
                None,
                config=config,
                state_dict=weights,
                dtype=torch.float32,
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


def restore_fitted(
    estimator: Any,
    *,
    classes: np.ndarray,
    model: Any,
    tokenizer: Any,
    last_token_pooling: bool,
    seed: int,
    history: list[Any],
    device: torch.device,
) -> None:
    """Set the fitted attributes a loaded classifier needs to predict (and to refit)."""
    _prepare_tokenizer(tokenizer, last_token_pooling)
    # Through __dict__: skorch's __setattr__ refuses modules set outside its initialize steps.
    vars(estimator).update(
        classes_=classes,
        n_classes_=len(classes),
        device_=device,
        _seed_=int(seed),
        tokenizer_=tokenizer,
        module_=SequenceClassifierModule(model, last_token_pooling).to(device),
        criterion_=estimator.criterion(),
        history_=History(history),
        # A loaded classifier may lack its checkpoint: it tokenizes into a cache of its own.
        _token_cache_=TokenCache(),
        _modules=["module"],
        _criteria=["criterion"],
        _optimizers=[],
        initialized_=True,
    )


# ---------------------------------------------------------------------------- pickle state
def _tokenizer_files(tokenizer: Any) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.save_pretrained(scratch)
        return {path.name: path.read_bytes() for path in Path(scratch).iterdir() if path.is_file()}


def _tokenizer_from_files(files: dict[str, bytes]) -> Any:
    with tempfile.TemporaryDirectory() as scratch:
        for name, content in files.items():
            (Path(scratch) / Path(name).name).write_bytes(content)
        with _quiet_transformers():
            return AutoTokenizer.from_pretrained(scratch, trust_remote_code=False)


def _weights_to_numpy(module: torch.nn.Module) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """CPU numpy views of the weights; a tensor shared by several names is stored once."""
    arrays: dict[str, np.ndarray] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach()
        key = (tensor.device, tensor.data_ptr(), tensor.shape, tensor.stride(), tensor.dtype)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        if tensor.dtype == torch.bfloat16:
            # numpy has no bfloat16; weights are float32 by design, but keep any tensor exact.
            tensor = tensor.float()
        arrays[name] = tensor.cpu().contiguous().numpy()
    return arrays, aliases


def get_state(estimator: Any) -> dict[str, Any]:
    """The pickle state of ``estimator``: builtins and numpy arrays only.

    Optimizer and gradient-scaler state, callbacks' fitted state and the checkpoint cache are
    not kept: a loaded classifier predicts, and ``fit`` starts over from the checkpoint.
    """
    params = estimator.get_params(deep=False)
    # torch.device and pathlib paths as strings, so skops needs to trust neither type.
    wrapped = {
        name: "torch.device" if isinstance(value, torch.device) else "path"
        for name, value in params.items()
        if isinstance(value, (torch.device, PurePath))
    }
    params.update({name: str(params[name]) for name in wrapped})
    state: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "params": params,
        "wrapped_params": wrapped,
        "versions": library_versions(),
        "fitted": None,
    }
    if not estimator.__sklearn_is_fitted__():
        return state
    module = estimator.module_
    weights, aliases = _weights_to_numpy(module.model)
    state["fitted"] = {
        "classes": encode_classes(estimator.classes_),
        "seed": int(estimator._seed_),
        "config": module.model.config.to_json_string(use_diff=False),
        "weights": weights,
        "weight_aliases": aliases,
        "tokenizer_files": _tokenizer_files(estimator.tokenizer_),
        "last_token_pooling": bool(module.last_token_pooling),
        "history": history_to_json(estimator.history_),
    }
    return state


def _config_from_json(text: str) -> PretrainedConfig:
    values = json.loads(text)
    return AutoConfig.for_model(values.pop("model_type"), **values)


def set_state(estimator: Any, state: dict[str, Any]) -> None:
    """Rebuild ``estimator`` from :func:`get_state`'s output, without network access."""
    if not isinstance(state, dict) or state.get("format") != FORMAT_NAME:
        raise ValueError(
            "This pickle does not hold a GPT2SequenceClassifier state written by sklearn-gpt2 "
            "(it may come from an older, incompatible release); refit and save it again."
        )
    warn_if_versions_differ(state.get("versions", {}), "This pickled GPT2SequenceClassifier")
    params = dict(state["params"])
    fitted = state["fitted"]
    device, params["device"], params["precision"] = target_device(
        params["device"], params["precision"]
    )
    for name, kind in state.get("wrapped_params", {}).items():
        if kind == "path":
            params[name] = Path(params[name])
        elif kind == "torch.device" and params[name] != "auto":
            params[name] = torch.device(params[name])
    estimator.__dict__.update(params)
    estimator._params_to_validate = set()
    if fitted is None:
        return
    weights = {
        # A read-only array (e.g. memory-mapped by joblib) is copied: torch needs writable memory.
        name: torch.from_numpy(array if array.flags.writeable else array.copy())
        for name, array in fitted["weights"].items()
    }
    for alias, name in fitted["weight_aliases"].items():
        weights[alias] = weights[name]
    model = build_model(_config_from_json(fitted["config"]), weights, "The pickled weights")
    restore_fitted(
        estimator,
        classes=decode_classes(fitted["classes"]),
        model=model,
        tokenizer=_tokenizer_from_files(fitted["tokenizer_files"]),
        last_token_pooling=fitted["last_token_pooling"],
        seed=fitted["seed"],
        history=json.loads(fitted["history"]),
        device=device,
    )
