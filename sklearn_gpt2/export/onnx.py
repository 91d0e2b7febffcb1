"""Export a fitted ``GPT2SequenceClassifier`` as ONNX, with its tokenizer and a manifest.

The graph is the estimator's own module, traced by torch's ONNX exporter with dynamic batch
and sequence axes: for a decoder, position ids counted over real tokens and pooling at the
last position of the left-padded row are part of it, so any padding gives the same result.
It returns the class probabilities (the softmax of the head, float32) and the raw logits.
LoRA adapters are merged into a copy of the weights; the fitted estimator is left as it was.
``quantize="int8"`` runs onnxruntime's dynamic quantization on the exported graph. The
layout is :mod:`sklearn_gpt2.onnx.artifact`'s; ``OnnxTextClassifier`` reads it.
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._version import __version__
from ..models.sequence import SequenceClassifierModule
from ..onnx.artifact import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INPUT_NAMES,
    MANIFEST_FILE,
    MODEL_FILE,
    OUTPUT_NAMES,
    QUANTIZATIONS,
    TOKENIZER_FILE,
    encode_classes,
)
from ..persistence.atomic_directory import replacing_directory
from ..persistence.manifest import list_files, write_manifest_file
from ..text.spec import TokenizationSpec

#: Above this many bytes of weights, the graph keeps them in a separate file (ONNX's protobuf
#: limit is 2 GiB).
_INLINE_WEIGHTS_LIMIT = 1 << 30


class _ProbabilityGraph(nn.Module):
    """The estimator's module with a softmax on top: ``(probabilities, logits)``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.module(input_ids, attention_mask).float()
        return torch.softmax(logits, dim=-1), logits


def _merged_copy(module: nn.Module) -> nn.Module:
    """A float32 CPU copy of ``module`` in evaluation mode, LoRA adapters merged in."""
    plain = copy.deepcopy(module).to(device="cpu", dtype=torch.float32).eval()
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:  # no peft: no adapters either
        return plain
    adapted = [name for name, sub in plain.named_modules() if isinstance(sub, BaseTunerLayer)]
    for name in adapted:
        layer = plain.get_submodule(name)
        layer.merge(safe_merge=True)  # type: ignore[operator]
        parent_name, _, child = name.rpartition(".")
        setattr(plain.get_submodule(parent_name), child, layer.get_base_layer())  # type: ignore[operator]
    return plain


def _tokenization_spec(estimator: Any) -> TokenizationSpec:
    spec = estimator._tokenization_spec()
    if not isinstance(spec, TokenizationSpec) or spec.template is not None:
        raise NotImplementedError(
            f"export_onnx cannot export the text handling of {type(estimator).__name__} "
            f"(a prompt template); only plain truncated texts are exported."
        )
    return spec


def _check_exportable(estimator: Any, quantize: str | None) -> None:
    check_is_fitted(estimator)
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(
            f"quantize must be None (float32) or one of {QUANTIZATIONS}; got {quantize!r}."
        )
    if not isinstance(estimator.module_, SequenceClassifierModule):
        raise NotImplementedError(
            f"export_onnx supports GPT2SequenceClassifier; {type(estimator).__name__} "
            f"(scoring label words with a language model) cannot be exported to ONNX yet. "
            f"Save it with save_pretrained or joblib instead."
        )
    if not hasattr(estimator.tokenizer_, "backend_tokenizer"):
        raise ValueError(
            f"export_onnx needs a fast tokenizer (one with a tokenizer.json); "
            f"{type(estimator.tokenizer_).__name__} is not one."
        )


def _export_graph(module: nn.Module, path: Path) -> None:
    graph = _ProbabilityGraph(module)
    # Two rows of 8 tokens, one padded: large enough that neither axis is taken as constant.
    input_ids = torch.zeros((2, 8), dtype=torch.int64)
    attention_mask = torch.ones((2, 8), dtype=torch.int64)
    attention_mask[0, :3] = 0
    if getattr(module, "pads_left", True) is False:
        attention_mask[0] = attention_mask[0].flip(0)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    n_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    with warnings.catch_warnings():
        # The exporter reports its own progress and deprecations as warnings.
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            (input_ids, attention_mask),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={
                "input_ids": {0: batch, 1: sequence},
                "attention_mask": {0: batch, 1: sequence},
            },
            verbose=False,
        )
    program.save(str(path), external_data=n_bytes > _INLINE_WEIGHTS_LIMIT)  # type: ignore[union-attr]


def _kept_in_float(source: Path) -> list[str]:
    """The matrix products of the last transformer block and of all after it (pooler, head).

    The exporter records each node's module path (``...layer.5``, ``...h.11``); the block with
    the highest index is the last. Without those records nothing is kept in float.
    """
    import onnx

    graph = onnx.load(str(source), load_external_data=False).graph
    products = [node for node in graph.node if node.op_type in ("MatMul", "Gemm")]
    blocks: list[int | None] = []
    for node in products:
        scopes = next(
            (p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), ""
        )
        numbered = [int(m.group(1)) for m in _BLOCK.finditer(scopes)]
        blocks.append(numbered[-1] if numbered else None)
    indexes = [index for index in blocks if index is not None]
    if not indexes:
        return []
    first = blocks.index(max(indexes))
    return [node.name for node in products[first:]]


#: A numbered block in a module path: ``encoder.layer.5'``, ``transformer.h.11'``.
_BLOCK = re.compile(r"\.(\d+)'")


def _quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel scales, and the last block and the head in float32. On MiniLM fine-tuned on
    # SST-2 (5,000 sentences, 2 epochs), int8 of every layer with per-tensor scales flipped
    # 3.4% of the dev labels; per-channel 1.0%; with the last block and the head kept in
    # float32, 0.9% (the same accuracy as float32). See docs/deploying.md.
    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=_kept_in_float(source),
    )


def _write_tokenizer(tokenizer: Any, path: Path) -> None:
    from tokenizers import Tokenizer

    # A copy without the truncation or padding the last call left set: the runtime sets both.
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    path.write_text(backend.to_str(), encoding="utf-8")


def _manifest_fields(
    estimator: Any, spec: TokenizationSpec, quantize: str | None
) -> dict[str, Any]:
    module = estimator.module_
    tokenizer = estimator.tokenizer_
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sklearn_gpt2_version": __version__,
        "estimator": type(estimator).__name__,
        "model_type": str(module.model.config.model_type),
        "tuning": str(getattr(estimator, "tuning", "full")),
        "classes": encode_classes(estimator.classes_),
        "max_length": spec.max_length,
        "truncation_side": spec.truncation_side,
        "truncation": spec.truncation,
        "window_stride": spec.window_stride,
        "padding_side": "left" if module.pads_left else "right",
        "pad_token_id": int(tokenizer.pad_token_id),
        "eos_token_id": None if tokenizer.eos_token_id is None else int(tokenizer.eos_token_id),
        "quantization": quantize,
        "inputs": list(INPUT_NAMES),
        "outputs": list(OUTPUT_NAMES),
    }


def export_onnx(estimator: Any, path: str | Path, quantize: str | None = None) -> Path:
    """Write a fitted classifier as ONNX, with ``tokenizer.json`` and a verified manifest.

    Parameters
    ----------
    estimator : GPT2SequenceClassifier
        A fitted classifier, of any tuning mode.
    path : str or path-like
        Directory to write (replaced whole if it exists; a failed export leaves it intact).
    quantize : {None, "int8"}, default=None
        None keeps float32 weights; ``"int8"`` quantizes the weights of the linear layers
        with onnxruntime's dynamic quantization (activations are quantized per batch).

    Returns
    -------
    path : Path
        The directory written, to pass to ``sklearn_gpt2.onnx.OnnxTextClassifier``.
    """
    _check_exportable(estimator, quantize)
    spec = _tokenization_spec(estimator)
    fields = _manifest_fields(estimator, spec, quantize)
    target = Path(path)
    module = _merged_copy(estimator.module_)
    with replacing_directory(target) as staging:
        if quantize is None:
            _export_graph(module, staging / MODEL_FILE)
        else:
            float_model = staging / "float32.onnx"
            _export_graph(module, float_model)
            _quantize_int8(float_model, staging / MODEL_FILE)
            for leftover in staging.glob("float32.onnx*"):
                leftover.unlink()
        _write_tokenizer(estimator.tokenizer_, staging / TOKENIZER_FILE)
        write_manifest_file(staging / MANIFEST_FILE, {**fields, "files": list_files(staging)})
    return target


def export_after_fit(estimator: Any, directory: str | Path, quantize: str | None) -> Path:
    """What the command line's ``--export-onnx DIR [--quantize int8]`` does after ``fit``."""
    return export_onnx(estimator, directory, quantize=quantize)


__all__ = ["export_after_fit", "export_onnx"]
