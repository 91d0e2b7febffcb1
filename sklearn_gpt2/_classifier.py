"""The estimator: a skorch net that fine-tunes GPT-2 (or any sequence classifier) on raw text."""

from __future__ import annotations

import os
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet

from ._data import (
    inference_order,
)
from ._faults import out_of_memory_error, report_interruption
from ._model import load_checkpoint
from ._net import TextClassifierNet, resolve_device
from ._persistence import get_state, set_state
from ._precision import PRECISIONS, autocast, resolve_precision
from ._pretrained import load_directory, save_directory
from ._validation import check_labels, check_texts


class GPT2SequenceClassifier(ClassifierMixin, TextClassifierNet):  # type: ignore[misc]
    """Fine-tune GPT-2 for text classification, as a scikit-learn classifier.

    The estimator takes raw texts. It tokenizes them once, pads each batch only to its own
    longest text (on the left for GPT-2, whose pad token is EOS), and classifies from the hidden
    state of the last real token with position ids counted over real tokens, so a text gets the
    same probabilities whatever batch it is in. Training is a skorch loop (AdamW, linear
    warmup/decay, gradient clipping) whose callbacks and history are skorch's.

    Any checkpoint that ``AutoModelForSequenceClassification`` loads works; encoder models
    (BERT, MiniLM, ...) are padded on the right and keep their own pooling.

    Parameters
    ----------
    model_name_or_path : str or path-like, default="gpt2"
        Hugging Face hub name or local directory with the model and tokenizer files. It is read
        from disk once per process, however many fits use it.
    max_length : int, default=128
        Texts are truncated to this many tokens (keeping their beginning). Must not exceed the
        model's context (1024 for GPT-2).
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
    device_ : torch.device
        Where the model lives.
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

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "model_name_or_path": [str, os.PathLike],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "warmup_ratio": [Interval(Real, 0, 1, closed="both")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "precision": [StrOptions(set(PRECISIONS))],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "device": [str, torch.device],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model_name_or_path: str = "gpt2",
        *,
        max_length: int = 128,
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
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.model_name_or_path = model_name_or_path
        self.max_length = max_length
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
        self.random_state = random_state
        self.verbose = verbose
        self._params_to_validate: set[str] = set()

    # ------------------------------------------------------------------ sklearn contract
    @classmethod
    def _get_param_names(cls) -> list[str]:
        # skorch treats every attribute without a trailing underscore as a parameter; ours are
        # exactly the arguments of __init__.
        return BaseEstimator._get_param_names.__func__(cls)  # type: ignore[attr-defined]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get the parameters of this estimator (those of ``__init__``)."""
        return BaseEstimator.get_params(self, deep=deep)

    def set_params(self, **params: Any) -> GPT2SequenceClassifier:
        """Set the parameters of this estimator (those of ``__init__``); ``fit`` checks them."""
        # Not skorch's: it re-initializes callbacks at once (raising on values that fit would
        # reject with a clear message) and accepts keys that get_params, and so clone, ignore.
        return BaseEstimator.set_params(self, **params)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return BaseEstimator.__repr__(self)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.target_tags.required = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_") and getattr(self, "module_", None) is not None

    def _check_params(self) -> None:
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    # ------------------------------------------------------------------ saving and loading
    def __getstate__(self) -> dict[str, Any]:
        # Weights once, as CPU numpy arrays, with the config and tokenizer files; no optimizer
        # state. See _persistence.get_state and docs/persistence.md.
        return get_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Replaces skorch's, which would call torch.device(state["device"]) on "auto".
        set_state(self, state)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Save the fitted classifier to ``directory`` in a format that needs no pickle.

        The directory holds the weights (``model.safetensors``), the model config (whose
        ``id2label`` names ``classes_``), the tokenizer files, and ``sklearn_gpt2.json`` with
        the hyperparameters (``callbacks`` excepted), ``classes_``, the training history, the
        library versions and a SHA-256 checksum of every file. Plain transformers opens it with
        ``AutoModelForSequenceClassification`` and ``AutoTokenizer``.

        Parameters
        ----------
        directory : str or path-like
            Where to write; created if needed. Files of an earlier save are overwritten.

        Returns
        -------
        directory : pathlib.Path
            The directory written, for :meth:`from_pretrained`.
        """
        check_is_fitted(self)
        return save_directory(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> GPT2SequenceClassifier:
        """Load a classifier written by :meth:`save_pretrained`, without unpickling anything.

        The model goes to the GPU when ``device="auto"`` and one is present; a model saved for
        a GPU loads on the CPU, with a warning, where there is none. Truncated, modified or
        missing files raise ``ValueError`` or ``FileNotFoundError`` naming the file.

        Parameters
        ----------
        directory : str or path-like
            A directory written by :meth:`save_pretrained`.

        Returns
        -------
        classifier : GPT2SequenceClassifier
            A fitted classifier whose ``predict_proba`` equals the saved one's.
        """
        return load_directory(cls, directory)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, **fit_params: Any) -> GPT2SequenceClassifier:
        """Fine-tune the model on texts ``X`` and labels ``y``, starting from the checkpoint.

        Parameters
        ----------
        X : iterable of str
            Training texts (list, tuple, numpy array or pandas Series).
        y : array-like of shape (n_samples,)
            Class labels: strings, integers or booleans; at least two classes.
        **fit_params : dict
            Passed on to skorch's ``fit``.

        Returns
        -------
        self : GPT2SequenceClassifier
            The fitted estimator.
        """
        # Forget the previous fit first: a refit that fails, even on bad input, must not
        # leave the old model predicting under the new parameters.
        self._forget_fit()
        self._check_params()
        texts = check_texts(X)
        labels = check_labels(y, len(texts))
        classes, label_indices = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({classes[0]!r}); a classifier needs at least two "
                f"distinct labels to learn from."
            )
        try:
            self.classes_ = classes
            self.n_classes_ = len(classes)
            self.device_ = resolve_device(self.device)
            resolve_precision(self.precision, self.device_)
            self._seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            checkpoint = load_checkpoint(self.model_name_or_path, self.n_classes_)
            if checkpoint.max_positions is not None and self.max_length > checkpoint.max_positions:
                raise ValueError(
                    f"max_length={self.max_length} exceeds the model's context of "
                    f"{checkpoint.max_positions} tokens; use max_length <= "
                    f"{checkpoint.max_positions}."
                )
        except BaseException:
            self._forget_fit()
            raise
        return self._train(texts, label_indices, from_checkpoint=True, **fit_params)

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, **fit_params: Any
    ) -> GPT2SequenceClassifier:
        """Train the fitted model for ``max_epochs`` more epochs, without starting over.

        Unlike :meth:`fit`, the weights are not reset to the checkpoint; the learning-rate
        schedule restarts from ``lr``. An unfitted estimator is fitted from the checkpoint, as
        by :meth:`fit`. A loaded classifier (joblib or :meth:`from_pretrained`) starts with a
        fresh optimizer, since its optimizer state is not saved.

        Parameters
        ----------
        X : iterable of str
            Training texts.
        y : array-like of shape (n_samples,)
            Labels, each one of ``classes_``.
        classes : array-like, default=None
            Accepted for scikit-learn compatibility; when given, it must equal ``classes_``.
        **fit_params : dict
            Passed on to skorch's ``partial_fit``.

        Returns
        -------
        self : GPT2SequenceClassifier
            The estimator, trained further.
        """
        if not self.__sklearn_is_fitted__():
            return self.fit(X, y, **fit_params)
        self._check_params()
        texts = check_texts(X)
        labels = check_labels(y, len(texts))
        known = self.classes_.tolist()
        if classes is not None and sorted(np.unique(np.asarray(classes)).tolist()) != known:
            raise ValueError(f"classes={list(classes)!r} differs from classes_={known!r}.")
        unknown = sorted({label for label in labels.tolist() if label not in known}, key=str)
        if unknown:
            raise ValueError(
                f"y contains labels the classifier was not fitted with: {unknown[:5]!r}. "
                f"partial_fit continues training on classes_={known!r}; call fit to start "
                f"over with new classes."
            )
        if getattr(self, "optimizer_", None) is None:
            # A loaded classifier: its optimizer and callbacks were not saved.
            self._initialize_virtual_params()
            self._initialize_callbacks()
            self._initialize_optimizer()
        return self._train(texts, np.searchsorted(self.classes_, labels), from_checkpoint=False)

    def _train(
        self, texts: list[str], label_indices: np.ndarray, from_checkpoint: bool, **fit_params: Any
    ) -> GPT2SequenceClassifier:
        """Run skorch's training loop; on failure, leave the estimator unfitted."""
        self._interrupted_ = False
        try:
            with torch.random.fork_rng(devices=self._cuda_devices()):
                torch.manual_seed(self._seed_ + len(self.history_ or ()))
                if from_checkpoint:
                    self.initialize()
                NeuralNet.partial_fit(
                    self, texts, label_indices.astype(np.int64), _routing_method="fit", **fit_params
                )
        except torch.OutOfMemoryError as error:
            self._forget_fit()
            raise out_of_memory_error(error, self, "fit") from error
        except BaseException:
            self._forget_fit()
            raise
        # The last step's gradients are no longer needed: free their memory (a model's worth)
        # before prediction; the optimizer keeps its state for partial_fit.
        self.optimizer_.zero_grad(set_to_none=True)
        if getattr(self, "_interrupted_", False):
            report_interruption(self)
        return self

    def _cuda_devices(self) -> list[int]:
        device = getattr(self, "device_", torch.device("cpu"))
        if device.type != "cuda":
            return []
        return [device.index if device.index is not None else torch.cuda.current_device()]

    def _forget_fit(self) -> None:
        """Drop every fitted attribute, so a failed fit never leaves a half-fitted estimator."""
        state = vars(self)
        for name in [name for name in state if name.endswith("_") and not name.startswith("__")]:
            # Bypass skorch's __delattr__ bookkeeping: we reset it wholesale below.
            del state[name]
        self._modules, self._criteria, self._optimizers = [], [], []

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of texts ``X``.

        Parameters
        ----------
        X : iterable of str
            Texts to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``; rows sum to 1; rows follow the order of ``X``.
        """
        check_is_fitted(self)
        texts = check_texts(X)
        dataset = self.get_dataset(texts)
        # One autocast region around all batches: autocast caches its low-precision copy of
        # each weight until the region ends, so weights are cast once per call, not per batch.
        # Batches come longest first; each one's rows go straight to their place in the
        # caller's order, so no per-batch tensor outlives its batch.
        order = inference_order(dataset.lengths)
        proba = np.empty((len(order), self.n_classes_))
        done = 0
        with autocast(resolve_precision(self.precision, self.device_), self.device_):
            for logits in self.forward_iter(dataset, training=False, device="cpu"):
                rows = order[done : done + len(logits)]
                proba[rows] = torch.softmax(logits.double(), dim=-1).numpy()
                done += len(logits)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels of texts ``X``.

        Parameters
        ----------
        X : iterable of str
            Texts to classify.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Labels from ``classes_``, in the order of ``X``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on texts ``X`` against labels ``y``.

        Parameters
        ----------
        X : iterable of str
            Texts.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Accuracy: the fraction of texts whose predicted label equals ``y``.
        """
        return float(ClassifierMixin.score(self, X, y, sample_weight=sample_weight))
