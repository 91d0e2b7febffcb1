"""Loading checkpoints, and the padding-invariant classification module.

A checkpoint (hub name or local directory) is read from disk once per process and kept as a
CPU template; every fit starts from a copy of it, so a grid search or a cross-validation never
loads the same weights twice.

Why padding changes GPT-2's predictions, and the fix
-----------------------------------------------------
GPT-2 has learned *absolute* position embeddings, and transformers numbers positions
``0..T-1`` along the padded row without looking at the attention mask. With left padding, a
text of length ``n`` padded to ``T`` therefore sees positions ``T-n..T-1`` instead of
``0..n-1``: its prediction depends on how much padding its batch needed. We pass explicit
``position_ids`` derived from the attention mask, so real tokens always get ``0..n-1``.

transformers' own pooling takes "the last token that is not the pad id". With EOS used as the
pad token this misreads a text that ends in a real EOS token, and an empty text. We pool from
the last position of the left-padded row, which is the last real token by construction, and
never compare token ids with the pad id. An empty text is encoded as a single EOS token (the
document boundary GPT-2 saw in pre-training) so that it has a real token to be classified from.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.activations import NewGELUActivation
from transformers.modeling_utils import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

logger = logging.getLogger(__name__)

_CACHE_LOCK = threading.Lock()
_CHECKPOINTS: dict[tuple[Any, ...], Checkpoint] = {}


@dataclass
class Checkpoint:
    """A loaded checkpoint: tokenizer plus a CPU template of the model."""

    key: str
    tokenizer: PreTrainedTokenizerBase
    template: PreTrainedModel
    new_parameters: tuple[str, ...]
    last_token_pooling: bool
    max_positions: int | None
    token_cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def fresh_model(self, id2label: dict[int, str], seed: int) -> PreTrainedModel:
        """Return a trainable copy of the template with a freshly initialised head.

        Parameters
        ----------
        id2label : dict of int to str
            Class names, stored in the model config so plain transformers can read them.
        seed : int
            Seed for the parameters the checkpoint does not provide (the new head).
        """
        model = copy.deepcopy(self.template)
        generator = torch.Generator().manual_seed(seed)
        std = getattr(model.config, "initializer_range", 0.02)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name not in self.new_parameters:
                    continue
                if parameter.ndim >= 2:
                    # transformers' own initialisation for new linear heads.
                    parameter.normal_(0.0, std, generator=generator)
                else:
                    parameter.zero_()
        model.config.id2label = dict(id2label)
        model.config.label2id = {label: index for index, label in id2label.items()}
        model.train()
        return model


def _fingerprint(name_or_path: str) -> tuple[Any, ...]:
    """Identify a checkpoint's files so a changed directory is read again."""
    path = Path(name_or_path)
    if not path.is_dir():
        return (name_or_path,)
    files = sorted(
        (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
        for entry in os.scandir(path)
        if entry.is_file()
    )
    return (str(path.resolve()), tuple(files))


def _not_found_message(name_or_path: str, error: Exception) -> str:
    # transformers reports a missing directory as a malformed hub name; say what happened.
    where = (
        ""
        if Path(name_or_path).is_dir()
        else "There is no local directory by that name, and it could not be loaded as a hub "
        "name either. "
    )
    return (
        f"Could not load the checkpoint {name_or_path!r}: {error}\n{where}"
        f"model_name_or_path must be a Hugging Face hub name (e.g. 'gpt2') or a local "
        f"directory with config.json, the model weights and the tokenizer files. Without "
        f"network access, point at a local copy: save one where you have access with "
        f"AutoModelForSequenceClassification.from_pretrained('gpt2').save_pretrained(path) and "
        f"AutoTokenizer.from_pretrained('gpt2').save_pretrained(path), then pass "
        f"model_name_or_path=path (setting HF_HUB_OFFLINE=1 avoids network look-ups)."
    )


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, last_token_pooling: bool) -> None:
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                "The checkpoint's tokenizer has neither a pad token nor an EOS token; add one, "
                "e.g. tokenizer.add_special_tokens({'pad_token': '<pad>'}), and save it again."
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left" if last_token_pooling else "right"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars; we report the new head ourselves."""
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _load(name: str, num_labels: int) -> tuple[Any, PreTrainedModel, dict[str, Any]]:
    tokenizer = AutoTokenizer.from_pretrained(name)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        name,
        num_labels=num_labels,
        dtype=torch.float32,
        ignore_mismatched_sizes=True,
        output_loading_info=True,
    )
    return tokenizer, model, info


def load_checkpoint(name_or_path: str | os.PathLike[str], num_labels: int) -> Checkpoint:
    """Load (or fetch from the per-process cache) a checkpoint for ``num_labels`` classes.

    Parameters
    ----------
    name_or_path : str or path-like
        Hub name or local directory, as accepted by ``from_pretrained``.
    num_labels : int
        Number of classes of the classification head.

    Returns
    -------
    checkpoint : Checkpoint
    """
    name = os.fspath(name_or_path)
    key = (_fingerprint(name), num_labels)
    with _CACHE_LOCK:
        if key in _CHECKPOINTS:
            return _CHECKPOINTS[key]
        try:
            with _quiet_transformers():
                tokenizer, model, info = _load(name, num_labels)
        except (OSError, ValueError) as error:
            raise OSError(_not_found_message(name, error)) from error
        last_token_pooling = isinstance(getattr(model, "score", None), nn.Linear)
        _prepare_tokenizer(tokenizer, last_token_pooling)
        model.config.pad_token_id = tokenizer.pad_token_id
        model.eval()
        new_parameters = {k for k in info.get("missing_keys", ())}
        new_parameters |= {k for k, *_ in info.get("mismatched_keys", ())}
        config = model.config
        max_positions = getattr(config, "n_positions", None) or getattr(
            config, "max_position_embeddings", None
        )
        checkpoint = Checkpoint(
            key=repr(key),
            tokenizer=tokenizer,
            template=model,
            new_parameters=tuple(sorted(new_parameters)),
            last_token_pooling=last_token_pooling,
            max_positions=max_positions,
        )
        _CHECKPOINTS[key] = checkpoint
        logger.info("Loaded checkpoint %s; newly initialised: %s", name, sorted(new_parameters))
        return checkpoint


def clear_checkpoint_cache() -> None:
    """Forget the checkpoints and tokenized texts this process keeps in memory."""
    with _CACHE_LOCK:
        _CHECKPOINTS.clear()


def use_fused_activations(model: nn.Module) -> nn.Module:
    """Swap GPT-2's elementwise-chain GELU for torch's fused kernel of the same function.

    The tanh-approximated GELU of GPT-2 (``gelu_new``) is written as a chain of elementwise
    ops; ``nn.GELU(approximate="tanh")`` computes the same function (equal within 3e-7).

    On a CPU the chain costs about a fifth of GPT-2's forward pass; the fused kernel a third
    of that, in training and prediction alike.
    """
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, NewGELUActivation):
                setattr(parent, name, nn.GELU(approximate="tanh"))
    return model


class SequenceClassifierModule(nn.Module):
    """A transformers sequence classifier whose output does not depend on padding.

    Decoder models (those with a ``score`` head, such as GPT-2) are fed left-padded batches,
    get position ids counted over real tokens only, and are classified from the last
    position. Encoder models are fed right-padded batches and keep their own pooling.

    Parameters
    ----------
    model : PreTrainedModel
        A model loaded with ``AutoModelForSequenceClassification``.
    last_token_pooling : bool
        Whether to classify from the last real token (decoders).
    """

    def __init__(self, model: PreTrainedModel, last_token_pooling: bool) -> None:
        super().__init__()
        self.model = use_fused_activations(model)
        self.last_token_pooling = last_token_pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(batch, num_labels)``."""
        if not self.last_token_pooling:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        # Count positions over real tokens only: left padding must not shift them.
        position_ids = (attention_mask.cumsum(-1) - 1).clamp_(min=0)
        hidden = self.model.base_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).last_hidden_state
        # Left padding puts every row's last real token at the last position.
        return self.model.score(hidden[:, -1])
