"""Prediction from an ONNX export without torch: ``OnnxTextClassifier``.

Needs ``onnxruntime`` and ``tokenizers`` (``pip install "sklearn-gpt2[onnx]"``); importing
this package imports neither torch nor transformers. Exports are written by
``GPT2SequenceClassifier.export_onnx``.
"""

from .classifier import OnnxTextClassifier

__all__ = ["OnnxTextClassifier"]
