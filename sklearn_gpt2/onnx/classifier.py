"""``OnnxTextClassifier``: predict from an ONNX export with onnxruntime, without torch.

Texts are checked and tokenized exactly as the estimator does it (the same validation, the
same :func:`~sklearn_gpt2.text.tokenize.tokenize` over the exported ``tokenizer.json``), run
through the package's one batch runner (length-sorted batches, each padded in numpy to its
own longest row) with an onnxruntime session as the engine, and the rows of a text are
combined as the estimator combines them. Imports numpy, ``tokenizers`` and ``onnxruntime``
only (and the torch-free parts of the package).
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from ..persistence.manifest import file_digest
from ..text.predictions import PredictionsFromProbaMixin
from ..text.rows import Rows
from ..text.runner import combine_rows, run_rows
from ..text.tokenize import tokenize
from ..text.truncation import text_rows
from ..text.validation import check_texts
from .artifact import INPUT_NAMES, OUTPUT_NAMES, ExportedModel, read_export
from .tokenizer import JsonTokenizer


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            "OnnxTextClassifier needs onnxruntime: pip install 'sklearn-gpt2[onnx]'."
        ) from None
    return onnxruntime


class OnnxTextClassifier(PredictionsFromProbaMixin):
    """A classifier exported with ``export_onnx``, run by onnxruntime without torch.

    It predicts what the exported ``GPT2SequenceClassifier`` predicts in float32 (the
    float32 export within 1e-4 in probability) and refuses an export whose files were
    modified, truncated or mixed with another export's, naming the file.

    Parameters
    ----------
    path : str or path-like
        Directory written by ``GPT2SequenceClassifier.export_onnx``.
    batch_size : int, default=32
        Texts per batch.
    n_threads : int or None, default=None
        Threads of the onnxruntime session (``intra_op_num_threads``); None lets
        onnxruntime use every core.
    providers : list of str or None, default=None
        onnxruntime execution providers; None uses ``["CPUExecutionProvider"]``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels of the exported estimator.
    n_classes_ : int
        Number of classes.
    max_length : int
        Texts are truncated to this many tokens, as in the exported estimator.
    quantization : str or None
        ``"int8"`` for a quantized export, None for float32.

    Examples
    --------
    >>> from sklearn_gpt2 import GPT2SequenceClassifier
    >>> from sklearn_gpt2.datasets import make_demo_checkpoint, load_demo
    >>> from sklearn_gpt2.onnx import OnnxTextClassifier
    >>> import tempfile
    >>> texts, labels = load_demo()
    >>> clf = GPT2SequenceClassifier(
    ...     make_demo_checkpoint(), max_epochs=1, precision="float32", random_state=0
    ... )
    >>> directory = clf.fit(texts, labels).export_onnx(tempfile.mkdtemp() + "/model")
    >>> onnx_clf = OnnxTextClassifier(directory)
    >>> onnx_clf.predict(["a wonderful, moving film"]).shape
    (1,)
    >>> bool(abs(onnx_clf.predict_proba(texts) - clf.predict_proba(texts)).max() < 1e-4)
    True
    """

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 32,
        n_threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        if not isinstance(batch_size, Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
        self.path = path
        self.batch_size = int(batch_size)
        self.n_threads = n_threads
        self.providers = providers
        exported = read_export(path)
        self._load(
            exported, str(exported.model_path), exported.tokenizer_path.read_text(encoding="utf-8")
        )

    def _load(self, exported: ExportedModel, model: str | bytes, tokenizer_json: str) -> None:
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        if self.n_threads is not None:
            options.intra_op_num_threads = int(self.n_threads)
        self._exported = exported
        self._session = ort.InferenceSession(
            model, options, providers=self.providers or ["CPUExecutionProvider"]
        )
        self._check_graph(exported)
        self._tokenizer = JsonTokenizer.from_str(tokenizer_json, exported.eos_token_id)
        self.classes_ = exported.classes
        self.n_classes_ = len(exported.classes)
        self.max_length = exported.spec.max_length
        self.quantization = exported.quantization

    def _check_graph(self, exported: ExportedModel) -> None:
        inputs = tuple(node.name for node in self._session.get_inputs())
        outputs = self._session.get_outputs()
        width = outputs[0].shape[-1] if outputs else None
        if inputs != INPUT_NAMES or outputs[0].name != OUTPUT_NAMES[0]:
            raise ValueError(
                f"{exported.model_path} is not a model that export_onnx writes: it takes "
                f"{inputs} and gives {outputs[0].name!r} first, not {INPUT_NAMES} and "
                f"{OUTPUT_NAMES[0]!r}. Export the classifier again."
            )
        if width != len(exported.classes):
            raise ValueError(
                f"{exported.model_path} gives {width} probabilities per text but the manifest "
                f"names {len(exported.classes)} classes: the files come from different exports."
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """The settings and the export's files, so a copy loads without the directory."""
        exported = self._exported
        state = {k: v for k, v in vars(self).items() if k in ("path", "batch_size", "n_threads")}
        state["providers"] = self.providers
        files = {}
        for name, path in (("model", exported.model_path), ("tokenizer", exported.tokenizer_path)):
            data = path.read_bytes()
            # The files on disk are those that were verified at load, or the copy is refused.
            if file_digest(path) != exported.manifest["files"][path.name]:
                raise ValueError(
                    f"{path} changed since this classifier loaded it; load the export again."
                )
            files[name] = data
        state["exported"] = exported
        state["files"] = files
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        files = state.pop("files")
        exported = state.pop("exported")
        self.__dict__.update(state)
        self._load(exported, files["model"], files["tokenizer"].decode("utf-8"))

    # ------------------------------------------------------------------ prediction
    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {INPUT_NAMES[0]: input_ids, INPUT_NAMES[1]: attention_mask}
        return self._session.run([OUTPUT_NAMES[0]], feed)[0]  # type: ignore[no-any-return]

    def _rows(self, texts: list[str]) -> Rows:
        # As the estimators make them: one row per text, or one per window of a long text.
        return text_rows(tokenize(self._tokenizer, texts, self._exported.spec))

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
        texts = check_texts(X)
        rows = self._rows(texts)
        proba = run_rows(
            rows,
            self._run,
            batch_size=self.batch_size,
            pad_token_id=self._exported.pad_token_id,
            pad_left=self._exported.pad_left,
        ).astype(np.float64)
        # The graph's softmax is float32: renormalize in float64 so rows sum to 1 exactly.
        proba /= proba.sum(axis=1, keepdims=True)
        return combine_rows(proba, rows)
