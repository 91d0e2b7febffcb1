"""A small demo dataset and a tiny GPT-2 checkpoint built locally, for offline use.

Neither needs a network: the dataset is written for this project and the checkpoint is a
randomly initialised two-layer GPT-2 with a byte-level BPE tokenizer trained on the demo texts.
The demo model is for trying the package and testing it, not for real predictions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "NEGATIVE_CUES",
    "POSITIVE_CUES",
    "TINY_DECODER_TYPES",
    "build_tiny_decoder",
    "build_tiny_gpt2",
    "load_demo",
    "make_demo_checkpoint",
]

# Each class has eight cue words; ten sentence frames of neutral words (acting, story, cast,
# the, is, ...) are each filled four times with positive and four times with negative cues, so
# every cue word recurs in about eight sentences and every frame appears in both classes. Only
# the cue words tell the classes apart, which a tiny model trained from random weights can
# learn from 64 sentences. (Frames that appear in one class only, or sentence pairs whose
# halves land in different folds, reward memorising whole sentences instead; and the demo's
# first version, which paired sentences built from different words, could not be learned by
# anything without pretrained knowledge.)
POSITIVE_CUES = (
    "wonderful", "brilliant", "superb", "charming", "moving", "delightful", "beautiful", "great",
)  # fmt: skip
NEGATIVE_CUES = ("dull", "dreadful", "boring", "tedious", "clumsy", "lifeless", "terrible", "weak")

_FRAMES = [
    "the acting is {} and the story is {}",
    "a {} film with a {} cast",
    "the music is {} and the ending is {}",
    "i found the script {} from start to finish",
    "{} characters and a {} plot",
    "a {} and {} drama",
    "the dialogue is {} and the jokes are {}",
    "the whole family will find it {}",
    "{} images and a {} score",
    "what a {} movie this is",
]
_FILLS_PER_CLASS = 4
# The first version's first pair (cue words "wonderful" and "dull"), in place of the first
# frame's first fill, so that examples showing ``texts[:2]`` still hold.
_FIRST_PAIR = ["a wonderful film with a warm heart", "a dull film with nothing to say"]

EOS = "<|endoftext|>"


def load_demo() -> tuple[list[str], list[str]]:
    """Return the demo texts and their labels (``"positive"`` or ``"negative"``).

    The 80 sentences were written for this project so that words recur across texts: ten frames
    of neutral words, each filled four times with positive and four times with negative cue
    words (``POSITIVE_CUES``, ``NEGATIVE_CUES``), so each cue word appears in about eight
    sentences (the first pair comes from the dataset's first version). A tiny GPT-2 trained from
    random weights learns to tell the classes apart; the data says nothing about real reviews.

    Returns
    -------
    texts : list of str
        80 short movie-review sentences written for this project.
    labels : list of str
        ``"positive"`` or ``"negative"``, alternating.

    Examples
    --------
    >>> from sklearn_gpt2.datasets import load_demo
    >>> texts, labels = load_demo()
    >>> len(texts), sorted(set(labels))
    (80, ['negative', 'positive'])
    >>> for text, label in zip(texts[:2], labels[:2]):
    ...     print(label, text)
    positive a wonderful film with a warm heart
    negative a dull film with nothing to say
    >>> for text, label in zip(texts[2:4], labels[2:4]):
    ...     print(label, text)
    positive the acting is superb and the story is charming
    negative the acting is boring and the story is tedious
    """
    texts: list[str] = []
    labels: list[str] = []
    used = 0  # cue words used so far in each class: the next ones continue the cycle
    for frame in _FRAMES:
        slots = frame.count("{}")
        for _ in range(_FILLS_PER_CLASS):
            for cues, label in ((POSITIVE_CUES, "positive"), (NEGATIVE_CUES, "negative")):
                texts.append(frame.format(*(cues[(used + k) % len(cues)] for k in range(slots))))
                labels.append(label)
            used += slots
    texts[:2] = _FIRST_PAIR
    return texts, labels


def build_tiny_gpt2(
    directory: str | os.PathLike[str],
    corpus: Iterable[str] | None = None,
    *,
    vocab_size: int = 400,
    n_layer: int = 2,
    n_head: int = 2,
    n_embd: int = 32,
    n_positions: int = 256,
    seed: int = 0,
) -> Path:
    """Write a tiny, randomly initialised GPT-2 checkpoint to ``directory``.

    The tokenizer is a GPT-2-style byte-level BPE trained on ``corpus`` with ``<|endoftext|>``
    as its only special token (and no pad token, like GPT-2's). The model is saved as a
    ``GPT2LMHeadModel``, the way the ``gpt2`` hub checkpoint is, so it loads through the same
    ``from_pretrained`` path.

    Parameters
    ----------
    directory : str or path-like
        Where to write ``config.json``, the weights and the tokenizer files.
    corpus : iterable of str, default=None
        Texts to train the tokenizer on; the demo texts by default.
    vocab_size : int, default=400
        Size of the BPE vocabulary (at least 257: the 256 bytes plus EOS).
    n_layer, n_head, n_embd, n_positions : int
        GPT-2 shape.
    seed : int, default=0
        Seed of the random weights.

    Returns
    -------
    directory : pathlib.Path
        The directory, ready for ``GPT2SequenceClassifier(directory)``.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    texts = list(corpus) if corpus is not None else load_demo()[0]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=1, special_tokens=[EOS], show_progress=False
    )
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file, merges_file = bpe.save_model(scratch)
        vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
        merges = [
            tuple(line.split(" "))
            for line in Path(merges_file).read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#version")
        ]
    tokenizer = GPT2Tokenizer(
        vocab=vocab, merges=merges, bos_token=EOS, eos_token=EOS, unk_token=EOS
    )
    tokenizer.model_max_length = n_positions
    tokenizer.save_pretrained(directory)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


def make_demo_checkpoint(directory: str | os.PathLike[str] | None = None) -> Path:
    """Build (once) the demo GPT-2 checkpoint and return its directory.

    Parameters
    ----------
    directory : str or path-like, default=None
        Where to build it; by default a folder in the system's temporary directory, reused by
        later calls. Its name carries a digest of the demo texts, so a checkpoint built for
        other texts (an earlier release's) is never reused.

    Returns
    -------
    directory : pathlib.Path
        The checkpoint's directory, ready for ``GPT2SequenceClassifier(directory)``.
    """
    if directory is not None:
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            build_tiny_gpt2(directory)
        return directory
    digest = hashlib.sha256("\n".join(load_demo()[0]).encode()).hexdigest()[:12]
    shared = Path(tempfile.gettempdir()) / f"sklearn-gpt2-demo-checkpoint-{digest}"
    if (shared / "config.json").is_file():
        return shared
    # Built beside its final place and renamed into it, so that two demos started at once, or
    # one interrupted while building, never leave or read a half-written checkpoint.
    building = Path(tempfile.mkdtemp(prefix=f".{shared.name}-", dir=shared.parent))
    try:
        build_tiny_gpt2(building)
        os.rename(building, shared)
    except OSError:
        if not (shared / "config.json").is_file():
            raise
        # another process finished first: use its checkpoint
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return shared


#: The tokenizer habits of each decoder family :func:`build_tiny_decoder` builds, as its hub
#: checkpoints have them: the special tokens (in id order), which are BOS, EOS and pad (None:
#: the tokenizer has none), and whether a BOS token is put before every text.
_DECODER_HABITS: dict[str, dict[str, Any]] = {
    # GPT-Neo: GPT-2's tokenizer (no pad token, nothing added).
    "gpt_neo": {"specials": [EOS], "bos": EOS, "eos": EOS, "pad": None, "add_bos": False},
    # Pythia (GPT-NeoX): a padding token in the vocabulary but none set; nothing added.
    "gpt_neox": {
        "specials": [EOS, "<|padding|>"], "bos": EOS, "eos": EOS, "pad": None, "add_bos": False,
    },
    # OPT: "</s>" is both BOS and EOS and is put before every text; "<pad>" pads.
    "opt": {
        "specials": ["<s>", "<pad>", "</s>", "<unk>"], "bos": "</s>", "eos": "</s>",
        "pad": "<pad>", "add_bos": True,
    },
    # Llama (2): "<s>" before every text, no pad token.
    "llama": {
        "specials": ["<unk>", "<s>", "</s>"], "bos": "<s>", "eos": "</s>", "pad": None,
        "add_bos": True,
    },
    # Qwen2: no BOS; "<|endoftext|>" is both EOS and pad.
    "qwen2": {
        "specials": [EOS, "<|im_start|>", "<|im_end|>"], "bos": None, "eos": EOS, "pad": EOS,
        "add_bos": False,
    },
}  # fmt: skip

#: Model types :func:`build_tiny_decoder` builds.
TINY_DECODER_TYPES = ("gpt2", *_DECODER_HABITS)


def _decoder_config(  # type: ignore[no-untyped-def]
    model_type: str, hidden: int, n_layer: int, n_positions: int, **token_ids: Any
):
    from transformers import AutoConfig

    sizes: dict[str, dict[str, Any]] = {
        # Local attention over 8 tokens in the second layer, so tests cross its window.
        "gpt_neo": dict(
            hidden_size=hidden, num_layers=n_layer, num_heads=2, window_size=8,
            attention_types=[[["global", "local"], n_layer // 2]], intermediate_size=2 * hidden,
            max_position_embeddings=n_positions,
        ),
        "gpt_neox": dict(
            hidden_size=hidden, num_hidden_layers=n_layer, num_attention_heads=2,
            intermediate_size=2 * hidden, max_position_embeddings=n_positions, rotary_pct=0.5,
        ),
        "opt": dict(
            hidden_size=hidden, num_hidden_layers=n_layer, num_attention_heads=2,
            ffn_dim=2 * hidden, max_position_embeddings=n_positions, word_embed_proj_dim=hidden,
        ),
        "llama": dict(
            hidden_size=hidden, num_hidden_layers=n_layer, num_attention_heads=4,
            num_key_value_heads=2, intermediate_size=2 * hidden,
            max_position_embeddings=n_positions,
        ),
        "qwen2": dict(
            hidden_size=hidden, num_hidden_layers=n_layer, num_attention_heads=4,
            num_key_value_heads=2, intermediate_size=2 * hidden,
            max_position_embeddings=n_positions, use_sliding_window=False,
        ),
    }  # fmt: skip
    return AutoConfig.for_model(model_type, **sizes[model_type], **token_ids)


def build_tiny_decoder(
    directory: str | os.PathLike[str],
    model_type: str,
    corpus: Iterable[str] | None = None,
    *,
    vocab_size: int = 400,
    n_layer: int = 2,
    hidden_size: int = 32,
    n_positions: int = 256,
    seed: int = 0,
) -> Path:
    """Write a tiny, randomly initialised decoder of one family to ``directory``.

    The tokenizer is a byte-level BPE trained on ``corpus``, saved as a transformers fast
    tokenizer with the habits of the family's hub checkpoints: GPT-Neo and GPT-NeoX (Pythia)
    have no pad token and add nothing; OPT puts ``</s>`` before every text and pads with
    ``<pad>``; Llama puts ``<s>`` before every text and has no pad token; Qwen2 adds nothing
    and pads with its EOS. The model is saved with its causal language-model head, as the hub
    checkpoints are, so both estimators load it through ``from_pretrained``.

    Parameters
    ----------
    directory : str or path-like
        Where to write ``config.json``, the weights and the tokenizer files.
    model_type : {"gpt2", "gpt_neo", "gpt_neox", "opt", "llama", "qwen2"}
        The family (transformers' ``config.model_type``); ``"gpt2"`` is
        :func:`build_tiny_gpt2`.
    corpus : iterable of str, default=None
        Texts to train the tokenizer on; the demo texts by default.
    vocab_size : int, default=400
        Size of the BPE vocabulary (at least 256 plus the special tokens).
    n_layer, hidden_size, n_positions : int
        Shape of the model.
    seed : int, default=0
        Seed of the random weights.

    Returns
    -------
    directory : pathlib.Path
        The directory, ready for ``GPT2SequenceClassifier(directory)``.
    """
    if model_type == "gpt2":
        return build_tiny_gpt2(
            directory, corpus, vocab_size=vocab_size, n_layer=n_layer, n_embd=hidden_size,
            n_positions=n_positions, seed=seed,
        )  # fmt: skip
    if model_type not in _DECODER_HABITS:
        raise ValueError(f"model_type must be one of {TINY_DECODER_TYPES}; got {model_type!r}.")
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    habits = _DECODER_HABITS[model_type]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    texts = list(corpus) if corpus is not None else load_demo()[0]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=habits["specials"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    if habits["add_bos"]:
        bos, bos_id = habits["bos"], bpe.token_to_id(habits["bos"])
        bpe.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    else:
        bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=habits["bos"],
        eos_token=habits["eos"],
        pad_token=habits["pad"],
        unk_token="<unk>" if "<unk>" in habits["specials"] else None,
        model_max_length=n_positions,
    )
    tokenizer.save_pretrained(directory)
    config = _decoder_config(
        model_type, hidden_size, n_layer, n_positions,
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    return directory
