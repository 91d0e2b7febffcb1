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

__all__ = [
    "NEGATIVE_CUES",
    "POSITIVE_CUES",
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
