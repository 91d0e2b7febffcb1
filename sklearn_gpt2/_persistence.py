"""Saving and loading a classifier: the pickle/joblib/skops state and the safe directory format.

Both formats hold the same things: the hyperparameters, ``classes_``, the model weights once
(float32, no optimizer state), the model config, the tokenizer files and the versions of the
libraries that wrote them.

* The *pickle state* (:func:`get_state` / :func:`set_state`) is made of builtins and numpy
  arrays only, so joblib writes the weights as raw arrays (the file is barely larger than the
  weights) and ``skops.io`` needs to trust no type but the estimator's.
* The *directory format* (:func:`save_directory` / :func:`load_directory`) is safetensors plus
  JSON and text files: loading it never unpickles anything, and plain transformers opens it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from skorch.history import History
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

from ._data import TokenCache
from ._model import SequenceClassifierModule, _prepare_tokenizer, _quiet_transformers

#: Layout version of the pickle state and of the directory manifest.
FORMAT_VERSION = 1
#: The JSON file of the directory format holding everything that is not weights or tokenizer.
MANIFEST = "sklearn_gpt2.json"
_FORMAT_NAME = "sklearn-gpt2-classifier"


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


def _warn_if_versions_differ(saved: dict[str, str], source: str) -> None:
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


def _encode_classes(classes: np.ndarray) -> dict[str, Any]:
    # Builtins plus the dtype, so str, int, bool and float labels come back exactly.
    return {
        "dtype": classes.dtype.str if classes.dtype != object else "object",
        "values": classes.tolist(),
    }


def _decode_classes(encoded: dict[str, Any]) -> np.ndarray:
    return np.asarray(encoded["values"], dtype=np.dtype(encoded["dtype"]))


def _to_builtin(value: Any) -> Any:
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.tolist()
    return repr(value)


def _history_to_json(history: Any) -> str:
    return json.dumps(list(history) if history is not None else [], default=_to_builtin)


def _target_device(device: str, precision: str) -> tuple[torch.device, str, str]:
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


def _build_model(config: PretrainedConfig, weights: dict[str, torch.Tensor], source: str) -> Any:
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


def _restore_fitted(
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
    device = params["device"]
    params["device"] = str(device)
    state: dict[str, Any] = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "params": params,
        "device_is_torch_device": isinstance(device, torch.device),
        "versions": library_versions(),
        "fitted": None,
    }
    if not estimator.__sklearn_is_fitted__():
        return state
    module = estimator.module_
    weights, aliases = _weights_to_numpy(module.model)
    state["fitted"] = {
        "classes": _encode_classes(estimator.classes_),
        "seed": int(estimator._seed_),
        "config": module.model.config.to_json_string(use_diff=False),
        "weights": weights,
        "weight_aliases": aliases,
        "tokenizer_files": _tokenizer_files(estimator.tokenizer_),
        "last_token_pooling": bool(module.last_token_pooling),
        "history": _history_to_json(estimator.history_),
    }
    return state


def _config_from_json(text: str) -> PretrainedConfig:
    values = json.loads(text)
    return AutoConfig.for_model(values.pop("model_type"), **values)


def set_state(estimator: Any, state: dict[str, Any]) -> None:
    """Rebuild ``estimator`` from :func:`get_state`'s output, without network access."""
    if not isinstance(state, dict) or state.get("format") != _FORMAT_NAME:
        raise ValueError(
            "This pickle does not hold a GPT2SequenceClassifier state written by sklearn-gpt2 "
            "(it may come from an older, incompatible release); refit and save it again."
        )
    _warn_if_versions_differ(state.get("versions", {}), "This pickled GPT2SequenceClassifier")
    params = dict(state["params"])
    fitted = state["fitted"]
    device, params["device"], params["precision"] = _target_device(
        params["device"], params["precision"]
    )
    if state.get("device_is_torch_device") and params["device"] != "auto":
        params["device"] = torch.device(params["device"])
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
    model = _build_model(_config_from_json(fitted["config"]), weights, "The pickled weights")
    _restore_fitted(
        estimator,
        classes=_decode_classes(fitted["classes"]),
        model=model,
        tokenizer=_tokenizer_from_files(fitted["tokenizer_files"]),
        last_token_pooling=fitted["last_token_pooling"],
        seed=fitted["seed"],
        history=json.loads(fitted["history"]),
        device=device,
    )


# ---------------------------------------------------------------------------- directory format
def _digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            sha.update(chunk)
    return {"size": path.stat().st_size, "sha256": sha.hexdigest()}


def _params_to_json(params: dict[str, Any]) -> dict[str, Any]:
    encoded = {}
    for name, value in params.items():
        if name == "callbacks":
            value = None  # arbitrary objects: not saved (documented)
        elif name == "device" or isinstance(value, os.PathLike):
            value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        elif name == "random_state" and not (value is None or isinstance(value, int)):
            value = None  # a RandomState instance has no JSON form
        elif isinstance(value, np.generic):
            value = value.item()
        encoded[name] = value
    return encoded


def save_directory(estimator: Any, directory: str | os.PathLike[str]) -> Path:
    """Write a fitted classifier as safetensors weights, tokenizer files and a JSON manifest."""
    if estimator.callbacks is not None:
        warnings.warn(
            "callbacks are not saved by save_pretrained; set them again with "
            "set_params(callbacks=...) before refitting a loaded classifier.",
            UserWarning,
            stacklevel=3,
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST
    # Without its manifest a half-written directory cannot be mistaken for a complete one.
    manifest_path.unlink(missing_ok=True)
    with _quiet_transformers():
        estimator.module_.model.save_pretrained(directory)
        estimator.tokenizer_.save_pretrained(directory)
    files = {
        path.name: _digest(path)
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": type(estimator).__name__,
        "params": _params_to_json(estimator.get_params(deep=False)),
        "classes": _encode_classes(estimator.classes_),
        "seed": int(estimator._seed_),
        "last_token_pooling": bool(estimator.module_.last_token_pooling),
        "history": json.loads(_history_to_json(estimator.history_)),
        "versions": library_versions(),
        "files": files,
    }
    partial = directory / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(partial, manifest_path)
    return directory


_MANIFEST_FIELDS = {
    "format": str,
    "format_version": int,
    "params": dict,
    "classes": dict,
    "seed": int,
    "last_token_pooling": bool,
    "history": list,
    "versions": dict,
    "files": dict,
}


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {directory} is not a directory written by "
            f"GPT2SequenceClassifier.save_pretrained, or the save did not finish."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is corrupt or incomplete (not valid JSON: {error}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT_NAME:
        raise ValueError(f"{path} is not a sklearn-gpt2 manifest (its 'format' is wrong).")
    for field, kind in _MANIFEST_FIELDS.items():
        if not isinstance(manifest.get(field), kind):
            raise ValueError(
                f"{path} is corrupt: field {field!r} is missing or not a {kind.__name__}."
            )
    if manifest["format_version"] > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in format version {manifest['format_version']}, newer than "
            f"this sklearn-gpt2 reads ({FORMAT_VERSION}); upgrade sklearn-gpt2."
        )
    return manifest


def _check_files(directory: Path, files: dict[str, Any]) -> None:
    for name, expected in files.items():
        path = directory / Path(name).name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; the saved classifier is incomplete.")
        if not isinstance(expected, dict) or _digest(path) != expected:
            raise ValueError(
                f"{path} is corrupt, incomplete or was modified after saving (its size or "
                f"SHA-256 differs from {MANIFEST}). Save the classifier again."
            )


def _load_weights(directory: Path) -> tuple[dict[str, torch.Tensor], str]:
    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    if single.is_file():
        shards = [single]
    elif index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = [directory / Path(name).name for name in sorted(set(weight_map.values()))]
    else:
        raise FileNotFoundError(f"{single} is missing; the saved classifier is incomplete.")
    weights: dict[str, torch.Tensor] = {}
    for shard in shards:
        try:
            weights.update(load_file(shard, device="cpu"))
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(
                f"{shard} is corrupt or incomplete (not a readable safetensors file: {error})."
            ) from None
    return weights, str(shards[0] if len(shards) == 1 else index)


@contextlib.contextmanager
def _blame(what: str) -> Iterator[None]:
    """Turn a loader's deep exception into one that names the file at fault."""
    try:
        yield
    except Exception as error:
        raise ValueError(f"{what} is corrupt or incomplete: {error}") from error


def load_directory(cls: type, directory: str | os.PathLike[str]) -> Any:
    """Load a classifier written by :func:`save_directory`; nothing is unpickled."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory written by save_pretrained.")
    manifest = _read_manifest(directory)
    _check_files(directory, manifest["files"])
    _warn_if_versions_differ(manifest["versions"], f"The classifier in {directory}")
    with _blame(str(directory / "config.json")), _quiet_transformers():
        config = AutoConfig.from_pretrained(
            directory, trust_remote_code=False, local_files_only=True
        )
    weights, weights_file = _load_weights(directory)
    model = _build_model(config, weights, weights_file)
    with _blame(f"The tokenizer files in {directory}"), _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(
            directory, trust_remote_code=False, local_files_only=True
        )
    params = manifest["params"]
    unknown = set(params) - set(cls._get_param_names())
    if unknown:
        raise ValueError(f"{directory / MANIFEST} names unknown parameters {sorted(unknown)}.")
    with _blame(f"The classes in {directory / MANIFEST}"):
        classes = _decode_classes(manifest["classes"])
    estimator = cls(**params)
    device, estimator.device, estimator.precision = _target_device(
        str(params.get("device", "auto")), str(params.get("precision", "auto"))
    )
    _restore_fitted(
        estimator,
        classes=classes,
        model=model,
        tokenizer=tokenizer,
        last_token_pooling=manifest["last_token_pooling"],
        seed=manifest["seed"],
        history=manifest["history"],
        device=device,
    )
    return estimator
