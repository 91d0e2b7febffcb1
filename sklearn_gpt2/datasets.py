"""A small demo dataset and a tiny GPT-2 checkpoint built locally, for offline use.

Neither needs a network: the dataset is written for this project and the checkpoint is a
randomly initialised two-layer GPT-2 with a byte-level BPE tokenizer trained on the demo texts.
The demo model is for trying the package and testing it, not for real predictions.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["build_tiny_gpt2", "load_demo", "make_demo_checkpoint"]

_POSITIVE = [
    "a wonderful film with a warm heart",
    "the acting is superb and the story moves along nicely",
    "i loved every minute of it",
    "a charming, funny and clever comedy",
    "beautifully shot and beautifully acted",
    "one of the best movies of the year",
    "the cast is great and the script is sharp",
    "a delightful surprise from start to finish",
    "moving, honest and full of life",
    "an excellent thriller that keeps you guessing",
    "the music is lovely and the ending is perfect",
    "smart writing and a terrific lead performance",
    "a joy to watch with the whole family",
    "funny, tender and wise",
    "i would happily see it again",
    "a brilliant, gripping drama",
    "the director handles every scene with great care",
    "a fresh and inventive story",
    "it made me laugh and it made me think",
    "a triumph of a movie",
    "great fun with real heart",
    "the performances are wonderful across the board",
    "an uplifting and beautiful film",
    "clever, stylish and very entertaining",
    "a lovely little gem",
    "the best thing i have seen in a long time",
    "strong characters and a story that matters",
    "a rich, rewarding experience",
    "exciting from the first scene to the last",
    "a warm and generous comedy",
    "highly recommended",
    "the film is a pleasure to watch",
    "a touching story told with skill",
    "fantastic visuals and a great score",
    "an instant classic",
    "witty dialogue and a likeable cast",
    "the kind of movie that restores your faith in cinema",
    "a heartfelt and honest film",
    "superb from beginning to end",
    "it is good , really good",
]

_NEGATIVE = [
    "a dull film with nothing to say",
    "the acting is wooden and the story drags",
    "i hated every minute of it",
    "a lazy, unfunny and tired comedy",
    "badly shot and badly acted",
    "one of the worst movies of the year",
    "the cast is wasted and the script is a mess",
    "a tedious bore from start to finish",
    "flat, dishonest and lifeless",
    "a predictable thriller with no surprises",
    "the music is grating and the ending is awful",
    "clumsy writing and a weak lead performance",
    "a chore to sit through",
    "boring, shallow and silly",
    "i would never watch it again",
    "a confused, plodding drama",
    "the director seems to have given up halfway",
    "a stale and derivative story",
    "it made me yawn and check my watch",
    "a disaster of a movie",
    "no fun at all and no heart",
    "the performances are terrible across the board",
    "a depressing and ugly film",
    "pretentious, messy and very dull",
    "a forgettable mess",
    "the worst thing i have seen in a long time",
    "thin characters and a story that goes nowhere",
    "a hollow, joyless experience",
    "boring from the first scene to the last",
    "a mean and cynical comedy",
    "not recommended",
    "the film is a pain to watch",
    "a clumsy story told without skill",
    "cheap visuals and an annoying score",
    "an instant flop",
    "awkward dialogue and an unlikeable cast",
    "the kind of movie that makes you give up on cinema",
    "a cold and dishonest film",
    "awful from beginning to end",
    "it is bad , really bad",
]

EOS = "<|endoftext|>"


def load_demo() -> tuple[list[str], list[str]]:
    """Return the demo texts and their labels (``"positive"`` or ``"negative"``).

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
    """
    texts: list[str] = []
    labels: list[str] = []
    for positive, negative in zip(_POSITIVE, _NEGATIVE, strict=True):
        texts += [positive, negative]
        labels += ["positive", "negative"]
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
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, special_tokens=[EOS])
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
        later calls.

    Returns
    -------
    directory : pathlib.Path
        The checkpoint's directory, ready for ``GPT2SequenceClassifier(directory)``.
    """
    if directory is None:
        directory = Path(tempfile.gettempdir()) / "sklearn-gpt2-demo-checkpoint"
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        build_tiny_gpt2(directory)
    return directory
