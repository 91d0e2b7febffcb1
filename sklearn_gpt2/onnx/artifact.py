"""The layout of an ONNX export: its file names, its manifest fields, and reading it verified.

An export is a directory of three files: ``model.onnx`` (the classifier, from token ids to
class probabilities), ``tokenizer.json`` (the ``tokenizers`` library's format) and
``sklearn_gpt2_onnx.json``, the manifest: classes, how texts become token ids (maximum
length, truncation side), how batches are padded, and the size and SHA-256 of the other
two files. Reading it checks every digest first, so a tampered or mismatched file is
refused by name before anything is loaded. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..persistence.manifest import check_files, read_manifest_file
from ..text.spec import TokenizationSpec

FORMAT_NAME = "sklearn-gpt2-onnx"
#: Version of the layout; a reader refuses a newer one.
FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "sklearn_gpt2_onnx.json"
#: Names of the graph's inputs and outputs, in order.
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = ("probabilities", "logits")
QUANTIZATIONS = ("int8",)
_WRITER = "GPT2SequenceClassifier.export_onnx"


@dataclass(frozen=True)
class ExportedModel:
    """What the manifest of an export says, checked.

    Parameters
    ----------
    directory : Path
        The export's directory.
    classes : ndarray
        ``classes_`` of the exported estimator.
    spec : TokenizationSpec
        How texts become token ids.
    pad_left : bool
        Whether batches are padded on the left (decoders) or on the right (encoders).
    pad_token_id : int
        Id written in padded positions.
    eos_token_id : int or None
        The tokenizer's end-of-text id (an empty text becomes this one token).
    quantization : str or None
        ``"int8"`` for a dynamically quantized model, None for float32.
    manifest : dict
        Every field of the manifest.
    """

    directory: Path
    classes: np.ndarray
    spec: TokenizationSpec
    pad_left: bool
    pad_token_id: int
    eos_token_id: int | None
    quantization: str | None
    manifest: dict[str, Any]

    @property
    def model_path(self) -> Path:
        """The ONNX model file."""
        return self.directory / MODEL_FILE

    @property
    def tokenizer_path(self) -> Path:
        """The ``tokenizer.json`` file."""
        return self.directory / TOKENIZER_FILE


def encode_classes(classes: np.ndarray) -> dict[str, Any]:
    """``classes_`` as builtins plus the dtype, so str, int, bool and float labels round-trip."""
    return {
        "dtype": classes.dtype.str if classes.dtype != object else "object",
        "values": classes.tolist(),
    }


def _decode_classes(encoded: Any, where: str) -> np.ndarray:
    problem = f"{where} is corrupt: its 'classes' field"
    if not isinstance(encoded, dict) or not isinstance(encoded.get("values"), list):
        raise ValueError(f"{problem} is not a dict with a list of 'values'.")
    try:
        dtype = np.dtype(encoded.get("dtype"))
    except TypeError:
        raise ValueError(f"{problem} has an unknown dtype {encoded.get('dtype')!r}.") from None
    values = encoded["values"]
    scalars = all(isinstance(v, (str, bool, int, float)) for v in values)
    if dtype.kind not in "OUbiuf" or not scalars:
        raise ValueError(f"{problem} holds something else than string, boolean or number labels.")
    classes = np.asarray(values, dtype=dtype)
    if len(classes) < 2 or not np.array_equal(np.unique(classes), classes):
        raise ValueError(f"{problem} is not at least two sorted, unique labels.")
    return classes


def _field(manifest: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = manifest.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ValueError(f"{where} is corrupt: its {name!r} field is missing or of the wrong type.")
    return value


def read_export(directory: str | Path) -> ExportedModel:
    """Read and verify the export in ``directory``.

    Parameters
    ----------
    directory : str or path-like
        A directory written by ``GPT2SequenceClassifier.export_onnx``.

    Returns
    -------
    exported : ExportedModel

    Raises
    ------
    FileNotFoundError
        When the directory, its manifest or one of its files is missing.
    ValueError
        When the manifest was edited or is of a newer layout, or when a file's size or
        SHA-256 differs from the manifest's (the message names the file).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{directory} is not a directory; pass the directory that export_onnx wrote."
        )
    where = str(directory / MANIFEST_FILE)
    manifest = read_manifest_file(directory / MANIFEST_FILE, FORMAT_NAME, _WRITER)
    version = _field(manifest, "format_version", int, where)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{where} has layout version {version}, newer than this sklearn-gpt2 reads "
            f"({FORMAT_VERSION}); upgrade sklearn-gpt2 to load it."
        )
    files = _field(manifest, "files", dict, where)
    for name in (MODEL_FILE, TOKENIZER_FILE):
        if name not in files:
            raise ValueError(f"{where} is corrupt: it does not list {name}.")
    check_files(directory, files, where)
    quantization = manifest.get("quantization")
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ValueError(f"{where} is corrupt: unknown quantization {quantization!r}.")
    padding_side = _field(manifest, "padding_side", str, where)
    if padding_side not in ("left", "right"):
        raise ValueError(f"{where} is corrupt: padding_side must be 'left' or 'right'.")
    try:
        stride = manifest.get("window_stride")
        spec = TokenizationSpec(
            max_length=_field(manifest, "max_length", int, where),
            # Exports written before the other truncations existed name only the side.
            truncation=str(
                manifest.get("truncation")
                or ("tail" if _field(manifest, "truncation_side", str, where) == "left" else "head")
            ),
            window_stride=stride
            if isinstance(stride, int) and not isinstance(stride, bool)
            else None,
        )
    except ValueError as error:
        raise ValueError(f"{where} is corrupt: {error}") from None
    eos = manifest.get("eos_token_id")
    return ExportedModel(
        directory=directory,
        classes=_decode_classes(manifest.get("classes"), where),
        spec=spec,
        pad_left=padding_side == "left",
        pad_token_id=_field(manifest, "pad_token_id", int, where),
        eos_token_id=eos if isinstance(eos, int) else None,
        quantization=quantization,
        manifest=manifest,
    )
