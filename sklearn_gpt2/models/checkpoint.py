"""Loading checkpoints once per process: the tokenizer, a token cache and one CPU template per head.

A checkpoint (hub name or local directory) is read from disk once per process; every fit
starts from a copy of its CPU template, so a grid search or a cross-validation never loads the
same weights twice. The tokenizer and the token cache belong to the checkpoint, not to a head:
a sequence classifier and a prompt classifier on the same files share both.
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
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)
from transformers.modeling_utils import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from ..text.tokenize import CachedTokenizer, TokenCache
from .families import ModelFamily, family_of, max_positions

#: Upper bound on the feature values (floats) kept per checkpoint by ``tuning="head"``: about
#: 200 MB, e.g. 65,000 texts for a 768-wide GPT-2.
MAX_CACHED_FEATURE_VALUES = 50_000_000

logger = logging.getLogger(__name__)

#: The kinds of model head the estimators load, by the transformers auto class that builds it.
HEADS = {
    "sequence-classification": AutoModelForSequenceClassification,
    "causal-lm": AutoModelForCausalLM,
}

_CACHE_LOCK = threading.Lock()
_CHECKPOINTS: dict[tuple[Any, ...], Checkpoint] = {}


def is_decoder(config: Any) -> bool:
    """Whether a model config belongs to a decoder family (see :mod:`.families`)."""
    return family_of(config).decoder


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, decoder: bool) -> None:
    """Give the tokenizer a pad token (EOS, as GPT-2 has none) and the side its model pads on."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                "The checkpoint's tokenizer has neither a pad token nor an EOS token; add one, "
                "e.g. tokenizer.add_special_tokens({'pad_token': '<pad>'}), and save it again."
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left" if decoder else "right"


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
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


@dataclass
class HeadTemplate:
    """A CPU model with one kind of head, and which of its parameters the files lacked."""

    model: PreTrainedModel
    new_parameters: tuple[str, ...]


@dataclass
class Checkpoint:
    """A loaded checkpoint: tokenizer, token cache and per-head CPU templates of the model."""

    name: str
    fingerprint: tuple[Any, ...]
    tokenizer: PreTrainedTokenizerBase
    family: ModelFamily
    max_positions: int | None
    token_cache: TokenCache = field(default_factory=TokenCache, repr=False)
    #: Pooled features of texts under the pretrained (frozen) backbone, for ``tuning="head"``;
    #: shared by every fit on this checkpoint, like the tokens.
    feature_cache: TokenCache = field(
        default_factory=lambda: TokenCache(MAX_CACHED_FEATURE_VALUES), repr=False
    )
    _templates: dict[tuple[str, int | None], HeadTemplate] = field(default_factory=dict)

    @property
    def decoder(self) -> bool:
        """Whether the checkpoint's family is a decoder (left padding, last-token pooling)."""
        return self.family.decoder

    @property
    def tokenize(self) -> CachedTokenizer:
        """The tokenizer bound to this checkpoint's token cache."""
        return CachedTokenizer(self.tokenizer, self.token_cache)

    def template(self, head: str, num_labels: int | None = None) -> HeadTemplate:
        """The CPU template with ``head`` (and ``num_labels`` outputs), loaded on first use."""
        key = (head, num_labels)
        with _CACHE_LOCK:
            if key not in self._templates:
                self._templates[key] = _load_template(
                    self.name, head, num_labels, self.family.load_dtype
                )
                self._templates[key].model.config.pad_token_id = self.tokenizer.pad_token_id
            return self._templates[key]

    def fresh_model(
        self,
        head: str,
        *,
        num_labels: int | None = None,
        id2label: dict[int, str] | None = None,
        seed: int = 0,
        share_pretrained: bool = False,
    ) -> PreTrainedModel:
        """Return a trainable copy of a template, with its new parameters freshly initialised.

        Parameters
        ----------
        head : {"sequence-classification", "causal-lm"}
            Which kind of head.
        num_labels : int, default=None
            Outputs of a classification head.
        id2label : dict of int to str, default=None
            Class names, stored in the model config so plain transformers can read them.
        seed : int, default=0
            Seed for the parameters the checkpoint does not provide (a new head).
        share_pretrained : bool, default=False
            Share the pretrained weights with the template instead of copying them, for a fit
            that never changes them (``tuning="head"``): a copy of a 124M model costs more
            than a head-mode fit. They are frozen (``requires_grad=False``) in the model
            returned; the template's own parameters are untouched.
        """
        template = self.template(head, num_labels)
        memo: dict[int, Any] = {}
        if share_pretrained:
            new = set(template.new_parameters)
            for name, parameter in template.model.named_parameters():
                if name not in new:
                    memo[id(parameter)] = torch.nn.Parameter(
                        parameter.detach(), requires_grad=False
                    )
        model = copy.deepcopy(template.model, memo)
        generator = torch.Generator().manual_seed(seed)
        std = getattr(model.config, "initializer_range", 0.02)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name not in template.new_parameters:
                    continue
                if parameter.ndim >= 2:
                    # transformers' own initialisation for new linear heads.
                    parameter.normal_(0.0, std, generator=generator)
                else:
                    parameter.zero_()
        if id2label is not None:
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


def _corrupt_weights_message(name_or_path: str, error: Exception) -> str:
    files = sorted(Path(name_or_path).glob("*.safetensors")) if Path(name_or_path).is_dir() else []
    where = ", ".join(str(path) for path in files) or f"the weights of {name_or_path!r}"
    return (
        f"The checkpoint {name_or_path!r} cannot be loaded: {where} is truncated or corrupt "
        f"({error}). Copy or download the checkpoint again, or save it again with "
        f"save_pretrained, so that its weights file is complete."
    )


def _check_finite_weights(name: str, model: PreTrainedModel, new_parameters: set[str]) -> None:
    """Refuse a checkpoint with NaN or infinite weights: everything it predicted would be NaN."""
    for key, tensor in model.state_dict().items():
        if key in new_parameters or not tensor.is_floating_point():
            continue  # a new head is initialised by each fit
        if not torch.isfinite(tensor).all():
            raise ValueError(
                f"The checkpoint {name!r} holds non-finite values (NaN or infinity) in its "
                f"weights ({key}): every probability computed from it would be NaN. Use a "
                f"checkpoint with finite weights (a training run that diverged can save such "
                f"weights; save one from before it diverged)."
            )


def _load_template(
    name: str, head: str, num_labels: int | None, dtype: torch.dtype
) -> HeadTemplate:
    kwargs: dict[str, Any] = {"dtype": dtype, "output_loading_info": True}
    if num_labels is not None:
        kwargs.update(num_labels=num_labels, ignore_mismatched_sizes=True)
    try:
        with quiet_transformers():
            model, info = HEADS[head].from_pretrained(name, **kwargs)
    except SafetensorError as error:
        raise ValueError(_corrupt_weights_message(name, error)) from None
    except (OSError, ValueError) as error:
        raise OSError(_not_found_message(name, error)) from error
    model.eval()
    new_parameters = set(info.get("missing_keys", ()))
    new_parameters |= {key for key, *_ in info.get("mismatched_keys", ())}
    _check_finite_weights(name, model, new_parameters)
    logger.info(
        "Loaded checkpoint %s (%s head); newly initialised: %s", name, head, sorted(new_parameters)
    )
    return HeadTemplate(model, tuple(sorted(new_parameters)))


def load_checkpoint(name_or_path: str | os.PathLike[str]) -> Checkpoint:
    """Load (or fetch from the per-process cache) the tokenizer and config of a checkpoint.

    Model weights are read on the first :meth:`Checkpoint.template` call for each head.

    Parameters
    ----------
    name_or_path : str or path-like
        Hub name or local directory, as accepted by ``from_pretrained``.

    Returns
    -------
    checkpoint : Checkpoint
    """
    name = os.fspath(name_or_path)
    key = _fingerprint(name)
    with _CACHE_LOCK:
        if key in _CHECKPOINTS:
            return _CHECKPOINTS[key]
        try:
            with quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(name)
                config = AutoConfig.from_pretrained(name)
        except (OSError, ValueError) as error:
            raise OSError(_not_found_message(name, error)) from error
        family = family_of(config)
        prepare_tokenizer(tokenizer, family.decoder)
        # A directory is remembered by its absolute path: the weights of another head are read
        # later, and must come from the same files even if the working directory changed.
        location = str(Path(name).resolve()) if Path(name).is_dir() else name
        checkpoint = Checkpoint(location, key, tokenizer, family, max_positions(config))
        _CHECKPOINTS[key] = checkpoint
        return checkpoint


def clear_checkpoint_cache() -> None:
    """Forget the checkpoints and tokenized texts this process keeps in memory."""
    with _CACHE_LOCK:
        _CHECKPOINTS.clear()
