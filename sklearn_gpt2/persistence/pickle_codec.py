"""The pickle codec: a fitted state as builtins and numpy arrays, for joblib, pickle and skops.

The state holds the hyperparameters, ``classes_``, the model weights once (float32 numpy
arrays, no optimizer state), the model config, the tokenizer files, the estimator's own extra
state, the tensors the model lacks (LoRA adapters) and the versions of the libraries that
wrote it, the base checkpoint of the fit and the metadata-routing requests. Made of builtins
and numpy arrays only, joblib writes the weights as raw arrays (the file is barely larger than
the weights) and ``skops.io`` needs to trust no type but the estimator's. A SHA-256 digest of
everything else in the state (see :mod:`.state_digest`) is checked before anything is built,
so a damaged file is refused instead of loading as another model; the tokenizer is rebuilt in
memory, so loading writes no file. States of format version 1 (sklearn-gpt2 0.1) and states
without a digest (sklearn-gpt2 0.2 and before) are read too.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig

from ..models.checkpoint import quiet_transformers
from ..runtime import Runtime
from .routing_requests import requests_from_builtins, requests_to_builtins
from .state import (
    FORMAT_NAME,
    FORMAT_VERSION,
    build_model,
    check_classes,
    check_finite,
    decode_classes,
    decode_params,
    describe,
    encode_params,
    fitted_from_fields,
    library_versions,
    restore,
    saved_fields,
    warn_if_versions_differ,
)
from .state_digest import check_digest, seal
from .tokenizer_memory import tokenizer_from_memory


def _tokenizer_files(tokenizer: Any) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.save_pretrained(scratch)
        return {path.name: path.read_bytes() for path in Path(scratch).iterdir() if path.is_file()}


def _tokenizer_from_files(files: dict[str, bytes]) -> Any:
    try:
        tokenizer = tokenizer_from_memory(files)
    except Exception:  # a layout the in-memory build does not know: read it as before
        tokenizer = None
    if tokenizer is not None:
        return tokenizer
    with tempfile.TemporaryDirectory() as scratch:
        for name, content in files.items():
            (Path(scratch) / Path(name).name).write_bytes(content)
        with quiet_transformers():
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
    params, wrapped = encode_params(estimator.get_params(deep=False), objects=True)
    state: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": type(estimator).__name__,
        "params": params,
        "wrapped_params": wrapped,
        "versions": library_versions(),
        "metadata_request": requests_to_builtins(estimator),
        "fitted": None,
    }
    if not estimator.__sklearn_is_fitted__():
        return seal(state)
    fitted = describe(estimator)
    weights, aliases = _weights_to_numpy(fitted.model)
    state["fitted"] = {
        # The fields every format stores alike, as one JSON string (skops trusts str).
        "fields": json.dumps(saved_fields(fitted)),
        "config": fitted.model.config.to_json_string(use_diff=False),
        "weights": weights,
        "weight_aliases": aliases,
        "tokenizer_files": _tokenizer_files(fitted.tokenizer),
        "adapter": None if fitted.adapter is None else _weights_to_numpy_dict(fitted.adapter),
    }
    return seal(state)


def _weights_to_numpy_dict(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: tensor.detach().cpu().contiguous().numpy() for name, tensor in tensors.items()}


def _writable_tensor(array: np.ndarray) -> torch.Tensor:
    # A read-only array (e.g. memory-mapped by joblib) is copied: torch needs writable memory.
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _config_from_json(text: str) -> PretrainedConfig:
    values = json.loads(text)
    return AutoConfig.for_model(values.pop("model_type"), **values)


def _fields(fitted: dict[str, Any]) -> dict[str, Any]:
    """The saved fields of a pickled fitted state (format 4), or of an older layout."""
    if "fields" in fitted:
        return json.loads(fitted["fields"])  # type: ignore[no-any-return]
    return {
        "head": fitted["head"],
        "classes": fitted["classes"],
        "seed": fitted["seed"],
        "history": json.loads(fitted["history"]),
        "extra": json.loads(fitted["extra"]),
        "base_checkpoint": fitted.get("base_checkpoint"),
    }


def _upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """A version-1 state (sklearn-gpt2 0.1) in the current layout."""
    fitted = state.get("fitted")
    if state.get("format_version") == 1 and fitted is not None:
        fitted = dict(fitted)
        fitted["head"] = "sequence-classification"
        fitted["extra"] = json.dumps({"last_token_pooling": fitted.pop("last_token_pooling")})
        state = {**state, "fitted": fitted, "estimator": "GPT2SequenceClassifier"}
    return state


def set_state(estimator: Any, state: dict[str, Any]) -> None:
    """Rebuild ``estimator`` from :func:`get_state`'s output, without network access."""
    name = type(estimator).__name__
    if not isinstance(state, dict) or state.get("format") != FORMAT_NAME:
        raise ValueError(
            f"This pickle does not hold a {name} state written by sklearn-gpt2 (it may come "
            f"from an older, incompatible release); refit and save it again."
        )
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        from .._version import __version__

        raise ValueError(
            f"This pickled {name} was written in format version {version} by "
            f"sklearn-gpt2 {state.get('versions', {}).get('sklearn_gpt2', '?')}; sklearn-gpt2 "
            f"{__version__} reads versions up to {FORMAT_VERSION}. Upgrade sklearn-gpt2, or "
            f"load it with the release that wrote it and save it again with save_pretrained."
        )
    check_digest(state, f"This pickled {name}")
    state = _upgrade(state)
    warn_if_versions_differ(state.get("versions", {}), f"This pickled {name}")
    # Parameters added since the state was written take their defaults.
    defaults = {name: getattr(type(estimator)(), name) for name in estimator._get_param_names()}
    params = {**defaults, **state["params"]}
    fitted = state["fitted"]
    runtime, params["device"], params["precision"] = Runtime.for_loading(
        params["device"], params["precision"]
    )
    params = decode_params(params, state.get("wrapped_params", {}))
    unknown = sorted(set(params) - set(type(estimator)._get_param_names()))
    if unknown:
        raise ValueError(
            f"This pickled {name} names unknown parameters {unknown}; it was not written by "
            f"this estimator or was altered."
        )
    estimator.__dict__.update(params)
    estimator._params_to_validate = set()
    try:
        estimator._check_params()
    except (TypeError, ValueError) as error:
        raise ValueError(f"This pickled {name} holds an invalid parameter: {error}") from None
    requests_from_builtins(estimator, state.get("metadata_request"), f"This pickled {name}")
    if fitted is None:
        return
    weights = {name: _writable_tensor(array) for name, array in fitted["weights"].items()}
    adapter = fitted.get("adapter")
    for alias, source in fitted["weight_aliases"].items():
        weights[alias] = weights[source]
    check_finite(weights, "The pickled weights")
    config = _config_from_json(fitted["config"])
    fields = _fields(fitted)
    classes = decode_classes(fields["classes"])
    try:
        check_classes(classes)
    except ValueError as error:
        raise ValueError(f"This pickled {name} is corrupt: {error}.") from None
    model = build_model(config, weights, "The pickled weights", fields["head"])
    estimator._check_saved_model(model, classes, f"This pickled {name}", "its weights")
    adapter_tensors = (
        None
        if adapter is None
        else {name: _writable_tensor(array) for name, array in adapter.items()}
    )
    if adapter_tensors is not None:
        check_finite(adapter_tensors, "The pickled adapters")
    restore(
        estimator,
        fitted_from_fields(
            fields,
            estimator=state["estimator"],
            params=params,
            classes=classes,
            model=model,
            tokenizer=_tokenizer_from_files(fitted["tokenizer_files"]),
            adapter=adapter_tensors,
        ),
        runtime,
    )
