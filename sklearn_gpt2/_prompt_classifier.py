"""The prompt estimator: classify with GPT-2's language-model head (zero-shot, few-shot, tuned).

Only what is its own lives here: its parameters, the prompt (template, label words, in-context
examples), its module (label scoring on a causal LM) and its training targets (the label's
tokens after the prompt, every other position ``-100``). Validation, batching, devices,
persistence and faults are the shared base's.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from .base.estimator import BaseTextClassifier
from .models.causal_lm import LabelScoringModule
from .text.rows import IGNORE_INDEX, Rows
from .text.spec import TEXT_FIELD, TokenizationSpec
from .text.tokenize import tokens_in_context
from .training.dataset import TextDataset

#: Between in-context examples, and between the examples and the query.
SHOT_SEPARATOR = "\n\n"


def _check_no_prefix(classes: list[Any], words: list[str], token_ids: list[list[int]]) -> None:
    """Refuse a label whose tokens begin another's: the longer label could never be predicted.

    A class scores the sum of its tokens' log-probabilities, each at most 0, so a label that
    continues another's tokens always scores at most as high as the shorter one.
    """
    for i, short in enumerate(token_ids):
        for j, long in enumerate(token_ids):
            if len(short) < len(long) and long[: len(short)] == short:
                raise ValueError(
                    f"The label word {words[j]!r} of class {classes[j]!r} begins with the "
                    f"tokens of {words[i]!r} (class {classes[i]!r}): its score adds "
                    f"log-probabilities (each at most 0) to that word's, so class "
                    f"{classes[j]!r} could never be predicted. Give the classes label words "
                    f"that do not begin with one another in label_words."
                )


class GPT2PromptClassifier(BaseTextClassifier):
    r"""Classify texts by the language model's probability of each class's label word.

    Each text is put in a prompt (``template``), and the classes are ranked by the total
    log-probability the model gives to their label words right after the prompt: ``predict_proba``
    is the softmax of those totals over the classes. This needs no training (zero-shot); with
    ``n_shots`` the prompt also shows labelled examples from the training data (few-shot); with
    ``max_epochs > 0`` the model is fine-tuned with the language-model loss on the label tokens
    only (the prompt's positions are ``-100``).

    GPT-2's byte-level BPE puts the space before a word inside the word's token: after a
    prompt ending in ``"Sentiment:"`` the answer is the token ``" positive"``, not
    ``"positive"``. Label words are therefore written without surrounding whitespace and
    scored with a leading space, unless the template ends in whitespace. A label word whose
    tokens begin another's (``"good"`` and ``"good indeed"``) is refused: the longer one could
    never win. Texts are padded on the left with positions counted over real tokens, so a
    text's probabilities do not depend on its batch.

    Parameters
    ----------
    model_name_or_path : str or path-like, default="gpt2"
        A causal language model: Hugging Face hub name or local directory.
    template : str, default="{text}"
        The prompt, with ``{text}`` where the text goes, e.g.
        ``"Review: {text}\nSentiment:"``.
    label_words : dict or None, default=None
        Class -> the word or phrase that names it. ``None`` uses each class's own name
        (``str(label)``).
    n_shots : int, default=0
        In-context examples per class, drawn (stratified, seeded by ``random_state``) from the
        training data and shown before each text with their label words.
    max_length : int, default=128
        Most tokens of a prompt (examples included); only the text is truncated.
    truncation : {"head", "tail", "head+tail", "window"}, default="head"
        What of a text too long for its prompt is kept: its beginning, its end, its first
        quarter and last three quarters, or all of it as overlapping windows, each put in the
        prompt on its own; a text's probabilities are then the renormalized geometric mean of
        its windows'. The template, the examples and the label words are never cut. See
        "Long texts" in the docs.
    window_stride : int or None, default=None
        Tokens between the starts of two windows (``truncation="window"`` only); None is half
        a window.
    max_epochs : int, default=0
        Epochs of fine-tuning on the label tokens; 0 leaves the weights as they are.
    lr : float, default=2e-5
        Peak learning rate of AdamW when fine-tuning.
    batch_size : int, default=32
        Prompts per batch.
    weight_decay : float, default=0.01
        AdamW weight decay on weight matrices.
    warmup_ratio : float, default=0.0
        Fraction of training steps of linear warmup.
    max_grad_norm : float or None, default=1.0
        Gradient clipping; ``None`` disables it.
    precision : {"auto", "float32", "bfloat16", "float16"}, default="auto"
        Numeric precision of the forward pass (as for ``GPT2SequenceClassifier``).
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when a GPU is present, else the CPU.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks for fine-tuning.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of examples, shuffling and dropout.
    verbose : int, default=0
        1 shows fine-tuning progress.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted class labels.
    label_token_ids_ : list of list of int
        The tokens scored for each class, in the order of ``classes_``.
    prompt_template_ : str
        The full prompt with ``{text}``: the examples, if any, then ``template``.
    module_ : torch.nn.Module
        The scoring module (the language model in ``module_.model``).

    Examples
    --------
    >>> from sklearn_gpt2 import GPT2PromptClassifier
    >>> from sklearn_gpt2.datasets import make_demo_checkpoint, load_demo
    >>> texts, labels = load_demo()
    >>> clf = GPT2PromptClassifier(make_demo_checkpoint(), template="{text} It was")
    >>> clf.fit(texts, labels).predict_proba(["a wonderful film"]).shape
    (1, 2)
    """

    _head: ClassVar[str] = "causal-lm"
    _refit_only: ClassVar[tuple[str, ...]] = ("template", "label_words", "n_shots")
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{
            name: constraint
            for name, constraint in BaseTextClassifier._parameter_constraints.items()
            if name != "validation_fraction"
        },
        "template": [str],
        "label_words": [dict, None],
        "n_shots": [Interval(Integral, 0, None, closed="left")],
        # 0 epochs is zero-shot: no weight update.
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        model_name_or_path: str = "gpt2",
        *,
        template: str = TEXT_FIELD,
        label_words: dict[Any, str] | None = None,
        n_shots: int = 0,
        max_length: int = 128,
        truncation: str = "head",
        window_stride: int | None = None,
        max_epochs: int = 0,
        lr: float = 2e-5,
        batch_size: int = 32,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.0,
        max_grad_norm: float | None = 1.0,
        precision: str = "auto",
        device: str | torch.device = "auto",
        callbacks: list[Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.model_name_or_path = model_name_or_path
        self.template = template
        self.label_words = label_words
        self.n_shots = n_shots
        self.max_length = max_length
        self.truncation = truncation
        self.window_stride = window_stride
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.max_grad_norm = max_grad_norm
        self.precision = precision
        self.device = device
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ the prompt
    def _validate_params(self) -> None:
        super()._validate_params()
        if self.template.count(TEXT_FIELD) != 1:
            raise ValueError(
                f"template must contain {TEXT_FIELD!r} exactly once, where the text goes; got "
                f"{self.template!r}. Example: template='Review: {{text}}\\nSentiment:'."
            )

    def _label_word(self, label: Any) -> str:
        if self.label_words is None:
            return str(label)
        if label not in self.label_words:
            raise ValueError(
                f"y contains the label {label!r}, which has no entry in label_words "
                f"({sorted(map(repr, self.label_words))}). Add a word for every class."
            )
        word = self.label_words[label]
        if not isinstance(word, str):
            raise TypeError(f"label_words[{label!r}] must be a string; got {word!r}.")
        return word

    def _checked_label_word(self, label: Any) -> str:
        """The label word of ``label``, refused if it is empty or has surrounding whitespace."""
        word = self._label_word(label)
        source = "label_words" if self.label_words is not None else "str(label) (label_words=None)"
        if not word.strip():
            raise ValueError(
                f"The label word {word!r} of class {label!r} (from {source}) is empty or only "
                f"whitespace: it tokenizes to nothing to score. Give the class a word in "
                f"label_words."
            )
        if word != word.strip():
            raise ValueError(
                f"The label word {word!r} of class {label!r} (from {source}) starts or ends "
                f"with whitespace, which would be scored as tokens of its own; write it as "
                f"{word.strip()!r} in label_words: the space before the word is added for you."
            )
        return word

    def _answer(self, word: str) -> str:
        """The label word as it follows the prompt: after a space where the family wants one."""
        if not self._checkpoint.family.space_before_label_word or self.template[-1:].isspace():
            return word
        return " " + word

    def _label_tokens(self) -> list[list[int]]:
        tokenizer = self.tokenizer_
        words = [self._checked_label_word(label) for label in self.classes_]
        _, context = TokenizationSpec(self.max_length, template=self.template).template_parts
        token_ids = [tokens_in_context(tokenizer, context, self._answer(word)) for word in words]
        for label, word, ids in zip(self.classes_, words, token_ids, strict=True):
            if not word.strip() or not ids:
                raise ValueError(
                    f"The label word {word!r} of class {label!r} tokenizes to nothing; give "
                    f"it a non-empty word in label_words."
                )
        seen: dict[tuple[int, ...], Any] = {}
        for label, ids in zip(self.classes_, token_ids, strict=True):
            if tuple(ids) in seen:
                raise ValueError(
                    f"Classes {seen[tuple(ids)]!r} and {label!r} have the same label words "
                    f"(tokens {ids}); the model could not tell them apart. Give each class "
                    f"its own word in label_words."
                )
            seen[tuple(ids)] = label
        _check_no_prefix(list(self.classes_), words, token_ids)
        return token_ids

    def _shots_prefix(self, texts: list[str], label_indices: np.ndarray) -> str:
        """In-context examples, ``n_shots`` per class, shown before the query."""
        if self.n_shots == 0:
            return ""
        rng = np.random.default_rng(self._seed_)
        chosen: list[int] = []
        for index in range(self.n_classes_):
            members = np.flatnonzero(label_indices == index)
            if len(members) < self.n_shots:
                raise ValueError(
                    f"n_shots={self.n_shots} examples of class {self.classes_[index]!r} were "
                    f"asked for, but y has only {len(members)}; use a smaller n_shots."
                )
            chosen.extend(rng.choice(members, self.n_shots, replace=False).tolist())
        order = rng.permutation(chosen)
        # Each example text is cut so that all examples take at most half of max_length.
        budget = max(1, (self.max_length // 2) // len(order))
        parts = []
        for i in order:
            ids = self.tokenizer_(texts[i], add_special_tokens=False)["input_ids"][:budget]
            text = self.tokenizer_.decode(ids).replace(TEXT_FIELD, "{ text}")
            answer = self._answer(self._label_word(self.classes_[label_indices[i]]))
            parts.append(self.template.replace(TEXT_FIELD, text) + answer)
        prefix = SHOT_SEPARATOR.join(parts) + SHOT_SEPARATOR
        room = self.max_length - len(
            self.tokenizer_(
                prefix + self.template.replace(TEXT_FIELD, ""), add_special_tokens=False
            )["input_ids"]
        )
        if room < 1:
            raise ValueError(
                f"{len(order)} in-context examples and the template take more than "
                f"max_length={self.max_length} tokens, leaving no room for the text. Use a "
                f"larger max_length or a smaller n_shots."
            )
        return prefix

    def _prepare_fit(self, texts: list[str], label_indices: np.ndarray) -> None:
        self.label_token_ids_ = self._label_tokens()
        self.prompt_template_ = self._shots_prefix(texts, label_indices) + self.template
        self._check_max_length(self._checkpoint.max_positions)

    def _longest_row(self) -> int:
        """A prompt of ``max_length`` tokens, then the longest label word."""
        label_tokens = getattr(self, "label_token_ids_", None) or [[]]
        return int(self.max_length) + max(map(len, label_tokens))

    def _tokenization_spec(self) -> TokenizationSpec:
        """The prompt (examples and template) around each text, within ``max_length``."""
        return TokenizationSpec(
            self.max_length, template=self.prompt_template_, **self._truncation_params()
        )

    # ------------------------------------------------------------------ module and targets
    def _new_module(self) -> torch.nn.Module:
        """A copy of the checkpoint's language model, scoring this fit's label words."""
        model = self._checkpoint.fresh_model(self._head, seed=self._seed_)
        return LabelScoringModule(model, self.label_token_ids_, self.tokenizer_.pad_token_id)

    def _scoring_callbacks(self) -> list[tuple[str, Any]]:
        """None: the loss is on label tokens, not on class indices."""
        return []

    def _make_dataset(self, rows: Rows, y: Any) -> TextDataset:
        """Prompt + the gold label's tokens to train on (the prompt's positions are -100)."""
        if y is None:
            return TextDataset.from_rows(rows)
        labels = np.asarray(y)[rows.text_index]
        token_ids, targets = [], []
        for ids, label in zip(rows.token_ids, labels, strict=True):
            answer = np.asarray(self.label_token_ids_[int(label)], dtype=np.int32)
            token_ids.append(np.concatenate([ids, answer]))
            targets.append(np.concatenate([np.full(len(ids), IGNORE_INDEX), answer]))
        return TextDataset(token_ids, targets, rows.text_index)

    def _row_losses(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Per-row cross-entropy of the next token, on label tokens only (float32)."""
        logits = y_pred[:, :-1].float()
        targets = y_true[:, 1:].to(logits.device)
        per_token = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
        )
        # Each text's mean over its label tokens, so a long label word counts as much as a
        # short one, with or without weights.
        counted = (targets != IGNORE_INDEX).sum(-1).clamp_min(1)
        return per_token.sum(-1) / counted

    def _outputs(self, module: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Label scores of one batch of prompts."""
        return module.score_labels(inputs["input_ids"], inputs["attention_mask"])  # type: ignore[operator,no-any-return]

    # ------------------------------------------------------------------ persistence
    def _fitted_extra(self) -> dict[str, Any]:
        return {
            "label_token_ids": [list(map(int, ids)) for ids in self.label_token_ids_],
            "prompt_template": self.prompt_template_,
        }

    def _module_from_saved(self, model: Any, extra: dict[str, Any]) -> torch.nn.Module:
        label_token_ids = extra.get("label_token_ids")
        vocab = model.config.vocab_size
        if not (
            isinstance(label_token_ids, list)
            and all(
                isinstance(ids, list)
                and ids
                and all(isinstance(t, int) and 0 <= t < vocab for t in ids)
                for ids in label_token_ids
            )
            and len({tuple(ids) for ids in label_token_ids}) == len(label_token_ids)
            and isinstance(extra.get("prompt_template"), str)
            and extra["prompt_template"].count(TEXT_FIELD) == 1
        ):
            raise ValueError(
                "The saved label tokens or prompt template are corrupt; save the classifier again."
            )
        self.label_token_ids_ = [list(ids) for ids in label_token_ids]
        self.prompt_template_ = str(extra["prompt_template"])
        pad = model.config.pad_token_id
        if pad is None:
            pad = model.config.eos_token_id
        return LabelScoringModule(model, self.label_token_ids_, int(pad))

    def _check_saved_model(
        self, model: Any, classes: np.ndarray, manifest: str, weights: str
    ) -> None:
        if len(classes) < 2:
            raise ValueError(f"{manifest} is corrupt: it names fewer than two classes.")
        if not hasattr(model, "get_output_embeddings") or model.get_output_embeddings() is None:
            raise ValueError(f"{weights} holds no language-model head; {manifest} is corrupt.")
