"""What the package knows of each model family, in one table: padding, pooling, LoRA, dtype.

Everything model-specific is read from :data:`FAMILIES` through :func:`family_of`; no other
module names a model type. A family is found by the ``model_type`` of its transformers config;
a model type the table does not name is treated as an encoder (BERT, MiniLM, RoBERTa, ...),
which keeps its own pooling.

Adding a decoder family is one entry here, plus a test that a text's probabilities are the
same alone and in any batch (see ``tests/test_families.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class ModelFamily:
    """How the estimators feed, pool, adapt and load the models of one family.

    Parameters
    ----------
    name : str
        Its name in messages and docs.
    model_types : frozenset of str
        The transformers ``config.model_type`` values of the family.
    decoder : bool
        A decoder reads left to right and is classified from its last real token: batches are
        padded on the left, with position ids counted over real tokens (``cumsum(mask) - 1``)
        and EOS as the pad token when the tokenizer has none. An encoder is padded on the
        right and keeps its own pooling (BERT: the pooler over ``[CLS]``).
    lora_targets : tuple of str or None
        The projections that get LoRA adapters (names of linear layers, anywhere but inside
        the classification head); None takes peft's own mapping for the model type, and
        ``"all-linear"`` where peft has none.
    lora_fan_in_fan_out : bool
        Whether those projections store their weight as (in, out), as GPT-2's ``Conv1D`` does.
    load_dtype : torch.dtype
        The dtype weights are loaded and trained in (autocast lowers the compute precision).
    space_before_label_word : bool
        Whether a label word follows its prompt after a space. Byte-level BPE (GPT-2) puts the
        space inside the word's token (``" positive"``); SentencePiece marks it the same way
        in context. Label words are always tokenized in context (prompt, then the word).
    positions : str
        How the family encodes positions, for the docs: ``"learned"`` (absolute embeddings),
        ``"learned, offset 2"`` (OPT, which adds 2 to the position ids it is given) or
        ``"rotary"``. Each is fed position ids counted over real tokens, which makes a text's
        positions the same alone and in a padded batch (rotary ones are relative, but the
        explicit ids keep the rotation angles, hence the float rounding, identical too).
    """

    name: str
    model_types: frozenset[str]
    decoder: bool
    lora_targets: tuple[str, ...] | None
    lora_fan_in_fan_out: bool = False
    load_dtype: torch.dtype = torch.float32
    space_before_label_word: bool = True
    positions: str = "learned"


GPT2 = ModelFamily(
    "GPT-2",
    frozenset({"gpt2"}),
    decoder=True,
    lora_targets=("c_attn", "c_proj", "c_fc"),
    lora_fan_in_fan_out=True,
)
#: BERT-like encoders (BERT, MiniLM, RoBERTa, ...): their attention and MLP projections.
ENCODER = ModelFamily(
    "encoder", frozenset(), decoder=False, lora_targets=("query", "key", "value", "dense")
)

GPT_NEO = ModelFamily(
    "GPT-Neo",
    frozenset({"gpt_neo"}),
    decoder=True,
    lora_targets=("q_proj", "k_proj", "v_proj", "out_proj", "c_fc", "c_proj"),
)
GPT_NEOX = ModelFamily(
    "GPT-NeoX (Pythia)",
    frozenset({"gpt_neox"}),
    decoder=True,
    lora_targets=("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    positions="rotary",
)
OPT = ModelFamily(
    "OPT",
    frozenset({"opt"}),
    decoder=True,
    lora_targets=("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
    positions="learned, offset 2",
)
#: Llama and the families that share its layer names.
LLAMA = ModelFamily(
    "Llama",
    frozenset({"llama"}),
    decoder=True,
    lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    positions="rotary",
)
QWEN2 = ModelFamily(
    "Qwen2",
    frozenset({"qwen2"}),
    decoder=True,
    lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    positions="rotary",
)
#: Every family with a verified entry; any other model type is an :data:`ENCODER`.
FAMILIES: tuple[ModelFamily, ...] = (GPT2, GPT_NEO, GPT_NEOX, OPT, LLAMA, QWEN2)

#: Names transformers gives the classification head of a sequence classifier (GPT-2's
#: ``score``; BERT's, RoBERTa's and most encoders' ``classifier``).
HEAD_NAMES = ("score", "classifier")


def family_of(config: Any) -> ModelFamily:
    """The family of a transformers config (:data:`ENCODER` for a model type not listed)."""
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    return ENCODER


def max_positions(config: Any) -> int | None:
    """The most tokens a model of ``config`` reads at once (None: no fixed limit)."""
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def lora_target_modules(model: Any, head: str) -> tuple[Any, bool]:
    """Peft's ``target_modules`` for ``model`` (never inside ``head``), and ``fan_in_fan_out``."""
    family = family_of(model.config)
    targets = family.lora_targets
    if targets is None or (family is ENCODER and model.config.model_type not in _ENCODER_TYPES):
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

        mapped = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model.config.model_type)
        if mapped is None:
            return "all-linear", family.lora_fan_in_fan_out
        targets = tuple(mapped)
    # A regular expression peft matches against full module names: the projections anywhere
    # but inside the head (which trains fully).
    return rf"^(?!{head}\.).*\.({'|'.join(targets)})$", family.lora_fan_in_fan_out


#: Encoders whose layers carry BERT's projection names (query, key, value, dense).
_ENCODER_TYPES = frozenset({"bert", "roberta", "xlm-roberta", "electra", "camembert"})
