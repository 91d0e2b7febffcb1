"""The sequence-classification estimator: GPT-2 (or any sequence classifier) on raw text.

Only what is its own lives here: its parameters, its module (a classification head on the
checkpoint, padding-invariant for decoders) and how it saves that module. Everything else
(validation, fit/predict, batching, devices, persistence, faults) is the shared base's.
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .base.estimator import BaseTextClassifier
from .models.pooling import POOLINGS
from .models.sequence import SequenceClassifierModule
from .training import TUNING_MODES


class GPT2SequenceClassifier(BaseTextClassifier):
    """Fine-tune GPT-2 for text classification, as a scikit-learn classifier.

    The estimator takes raw texts. It tokenizes them once, pads each batch only to its own
    longest text (on the left for GPT-2, whose pad token is EOS), and classifies from the hidden
    state of the last real token with position ids counted over real tokens, so a text gets the
    same probabilities whatever batch it is in. Training is a skorch loop (AdamW, linear
    warmup/decay, gradient clipping) whose callbacks and history are skorch's.

    Any checkpoint that ``AutoModelForSequenceClassification`` loads works; encoder models
    (BERT, MiniLM, ...) are padded on the right and keep their own pooling.

    Three training modes trade accuracy for cost (see "Choosing how to train" in the docs):
    ``tuning="full"`` updates every weight; ``"lora"`` trains low-rank adapters and the head;
    ``"head"`` freezes the backbone, computes each text's features once (cached across fits)
    and trains only the head.

    Parameters
    ----------
    model_name_or_path : str or path-like, default="gpt2"
        Hugging Face hub name or local directory with the model and tokenizer files. It is read
        from disk once per process, however many fits use it.
    max_length : int, default=128
        Most tokens the model reads at once (special tokens included); what of a longer text
        is kept is ``truncation``'s choice. Must not exceed the model's context (1024 for
        GPT-2).
    truncation : {"head", "tail", "head+tail", "window"}, default="head"
        What of a text longer than ``max_length`` tokens is kept. ``"head"``: its beginning.
        ``"tail"``: its end. ``"head+tail"``: its first quarter and last three quarters (the
        128 + 382 of 510 tokens found best for BERT on IMDB, scaled). ``"window"``: all of it,
        as windows of ``max_length`` tokens, ``window_stride`` apart; every window trains with
        its text's label and weight, and a text's probabilities are the renormalized geometric
        mean of its windows'. A text that fits is never cut. See "Long texts" in the docs.
    window_stride : int or None, default=None
        Tokens between the starts of two windows (``truncation="window"`` only); None is half
        a window.
    lr : float, default=2e-5
        Peak learning rate of AdamW.
    batch_size : int, default=32
        Texts per batch, in training and prediction.
    max_epochs : int, default=3
        Passes over the training data.
    weight_decay : float, default=0.01
        AdamW weight decay, applied to weight matrices only (not to biases or layer norms).
    warmup_ratio : float, default=0.0
        Fraction of the training steps over which the learning rate rises linearly from 0 to
        ``lr``; it then decays linearly to 0 at the end of training.
    max_grad_norm : float or None, default=1.0
        Clip the gradient norm to this value; ``None`` disables clipping.
    precision : {"auto", "float32", "bfloat16", "float16"}, default="auto"
        Numeric precision of the forward pass. ``"auto"`` uses bfloat16 autocast where the
        hardware supports it natively (CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX)
        and float32 elsewhere. ``"float16"`` uses loss scaling and needs CUDA. Weights and the
        optimizer stay float32.
    validation_fraction : float or None, default=None
        Fraction of the training texts held out (stratified) to report ``valid_loss`` and
        ``valid_acc`` each epoch, e.g. for early stopping. By default every text is used for
        training.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when a GPU is present, else the CPU.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks, e.g. ``skorch.callbacks.EarlyStopping``.
    tuning : {"full", "lora", "head"}, default="full"
        What a fit trains. ``"full"``: every weight. ``"lora"``: low-rank adapters on the
        attention and MLP projections (through ``peft``) and the head; the backbone's weights
        get no gradients and no optimizer state; it wants a larger ``lr`` than ``"full"``
        (e.g. 1e-4 to 1e-3). ``"head"``: only the classification head, on pooled features
        that the frozen backbone computes once per (checkpoint, text, ``pooling``) and that
        every fit on the checkpoint shares (a decoder reads each text once for every
        ``max_length`` up to 128 tokens). ``fit`` solves a linear head as the convex problem
        it is (logistic regression, L2 chosen by 5-fold validation on the features), so
        ``lr`` and ``max_epochs`` do not change it; they apply to ``partial_fit``, which
        trains that head further by epochs.
    pooling : {"auto", "last", "mean", "weighted_mean"}, default="auto"
        The vector the classification head reads, in every ``tuning`` mode. ``"auto"``: the
        model's own (GPT-2: the last real token; an encoder: its own pooling, e.g. BERT's
        pooled ``[CLS]``). ``"last"``: the hidden state of the last real token. ``"mean"``:
        the mean hidden state of the real tokens (what sentence-embedding checkpoints such as
        MiniLM were trained for). ``"weighted_mean"``: the mean weighted by position,
        ``i / sum(1..n)`` for token ``i`` of ``n`` (decoders only; SGPT). Padding never counts.
    lora_rank : int, default=8
        Rank of the LoRA adapters (``tuning="lora"`` only); their scaling is
        ``lora_alpha = 2 * lora_rank``.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in ``LogisticRegression``: a dict label ->
        weight (labels not named weigh 1), or ``"balanced"`` for
        ``n_samples / (n_classes * np.bincount(y))``. Multiplied with ``sample_weight``.
    random_state : int, RandomState instance or None, default=None
        Seeds the new classification head, dropout, shuffling and the validation split. The
        same seed, data and machine give identical predictions.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar and one line per epoch with ``train_loss``,
        ``train_acc`` (and ``valid_loss``, ``valid_acc`` with a validation split).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted class labels.
    n_classes_ : int
        Number of classes.
    module_ : torch.nn.Module
        The fine-tuned model (a wrapper around the transformers model in ``module_.model``).
    tokenizer_ : transformers tokenizer
        The checkpoint's tokenizer.
    runtime_ : Runtime
        The device and precision the fit resolved ``device`` and ``precision`` to (what
        ``"auto"`` picked), as ``runtime_.device`` and ``runtime_.precision``.
    history_ : skorch.History
        Per-epoch and per-batch training records.

    Examples
    --------
    >>> from sklearn_gpt2 import GPT2SequenceClassifier
    >>> from sklearn_gpt2.datasets import make_demo_checkpoint, load_demo
    >>> texts, labels = load_demo()
    >>> clf = GPT2SequenceClassifier(make_demo_checkpoint(), max_epochs=1, random_state=0)
    >>> clf.fit(texts, labels).predict(["a wonderful, moving film"]).shape
    (1,)
    >>> clf.predict_proba(["dull and far too long", ""]).sum(axis=1).round(6)
    array([1., 1.])
    """

    _head: ClassVar[str] = "sequence-classification"
    _refit_only: ClassVar[tuple[str, ...]] = ("tuning", "lora_rank")
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseTextClassifier._parameter_constraints,
        "tuning": [StrOptions(set(TUNING_MODES))],
        "lora_rank": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions(set(POOLINGS))],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        model_name_or_path: str = "gpt2",
        *,
        max_length: int = 128,
        truncation: str = "head",
        window_stride: int | None = None,
        lr: float = 2e-5,
        batch_size: int = 32,
        max_epochs: int = 3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.0,
        max_grad_norm: float | None = 1.0,
        precision: str = "auto",
        validation_fraction: float | None = None,
        device: str | torch.device = "auto",
        callbacks: list[Any] | None = None,
        tuning: str = "full",
        pooling: str = "auto",
        lora_rank: int = 8,
        class_weight: dict[Any, float] | str | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.model_name_or_path = model_name_or_path
        self.max_length = max_length
        self.truncation = truncation
        self.window_stride = window_stride
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.max_grad_norm = max_grad_norm
        self.precision = precision
        self.validation_fraction = validation_fraction
        self.device = device
        self.callbacks = callbacks
        self.tuning = tuning
        self.pooling = pooling
        self.lora_rank = lora_rank
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    def _head_outputs(self) -> int:
        return int(self.n_classes_)

    def _new_module(self) -> torch.nn.Module:
        """A fresh classification head on a copy of the checkpoint."""
        model = self._checkpoint.fresh_model(
            self._head,
            num_labels=self._head_outputs(),
            id2label={index: str(label) for index, label in enumerate(self.classes_)},
            seed=self._seed_,
            # Head mode never changes the pretrained weights: share them, do not copy them.
            share_pretrained=self._fitted_tuning() == "head",
        )
        return SequenceClassifierModule(model, self._checkpoint.decoder, self.pooling)

    def _fitted_extra(self) -> dict[str, Any]:
        module = self.module_
        return {"last_token_pooling": bool(module.last_token_pooling), "pooling": module.pooling}

    def _check_saved_model(
        self, model: Any, classes: np.ndarray, manifest: str, weights: str
    ) -> None:
        if len(classes) != model.config.num_labels:
            raise ValueError(
                f"{manifest} is corrupt: it names {len(classes)} classes but the model in "
                f"{weights} has {model.config.num_labels} outputs."
            )
        names = {int(index): str(label) for index, label in model.config.id2label.items()}
        if names != {index: str(label) for index, label in enumerate(classes)}:
            raise ValueError(
                f"{manifest} is corrupt: its classes {classes.tolist()!r} differ from the "
                f"model config's id2label {names!r}."
            )

    def _module_from_saved(self, model: Any, extra: dict[str, Any]) -> torch.nn.Module:
        # Saves from before the pooling parameter pooled as the model does ("auto").
        return SequenceClassifierModule(
            model, bool(extra["last_token_pooling"]), str(extra.get("pooling", "auto"))
        )

    def export_onnx(self, path: str | os.PathLike[str], quantize: str | None = None) -> Path:
        """Export the fitted classifier as ONNX, to predict without torch.

        The directory holds ``model.onnx`` (token ids to class probabilities, with dynamic
        batch and sequence axes; LoRA adapters merged into the weights), ``tokenizer.json``
        and a manifest with the classes, the text handling and the files' SHA-256.
        ``sklearn_gpt2.onnx.OnnxTextClassifier`` loads it with onnxruntime only.

        Parameters
        ----------
        path : str or path-like
            Directory to write; an existing one is replaced, and kept intact if the export
            fails.
        quantize : {None, "int8"}, default=None
            None keeps float32 weights (the same probabilities within 1e-4); ``"int8"``
            applies onnxruntime's dynamic int8 quantization to the linear layers (smaller,
            faster on CPUs, slightly different probabilities).

        Returns
        -------
        path : Path
            The directory written.
        """
        from .export.onnx import export_onnx

        return export_onnx(self, path, quantize=quantize)
