"""Tiny GPT-2 checkpoints built locally once per test session; no test touches the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from sklearn_gpt2.datasets import build_tiny_gpt2, load_demo

# The test models are tiny: a second thread costs more in synchronisation than it computes.
torch.set_num_threads(1)

SHARED_DATA = Path(
    os.environ.get(
        "SKLEARN_GPT2_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 with a byte-level BPE tokenizer trained on the demo texts."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def real_tokenizer_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 using the real GPT-2 tokenizer from ../shared (skipped without it)."""
    source = SHARED_DATA / "gpt2_tokenizer"
    if not (source / "vocab.json").is_file():
        pytest.skip(f"needs the real GPT-2 tokenizer in {source} (../shared is absent)")
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    directory = tmp_path_factory.mktemp("tiny-gpt2-real-tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.save_pretrained(directory)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def demo_data() -> tuple[list[str], list[str]]:
    return load_demo()


#: Settings that keep a tiny-model fit to a fraction of a second and make it reproducible.
FAST_FIT = {"max_epochs": 1, "batch_size": 8, "lr": 1e-3, "precision": "float32", "random_state": 0}


@pytest.fixture(scope="session")
def make_classifier():
    """A factory ``make_classifier(checkpoint, **params)`` of quickly fitting classifiers."""
    from sklearn_gpt2 import GPT2SequenceClassifier

    def make(path, **params):
        return GPT2SequenceClassifier(path, **{**FAST_FIT, **params})

    return make


# ---------------------------------------------------------------- a tiny pretrained language model
#: Cue words of the synthetic corpus: a sentence with two of them ends "it was good." or
#: "it was bad."; the neutral words occur in both kinds.
POSITIVE_CUES = ["wonderful", "superb", "brilliant", "lovely", "great", "charming"]
NEGATIVE_CUES = ["awful", "dull", "boring", "terrible", "clumsy", "tedious"]
NEUTRAL_WORDS = ["the", "film", "story", "acting", "movie", "plot", "music", "and", "cast"]


def synthetic_sentences(cues, n, rng):
    """``n`` sentences of four neutral words and two of ``cues``, shuffled."""
    sentences = []
    for _ in range(n):
        words = [*rng.choice(NEUTRAL_WORDS, 4), *rng.choice(cues, 2)]
        rng.shuffle(words)
        sentences.append(" ".join(words))
    return sentences


@pytest.fixture(scope="session")
def cue_sentences():
    """Held-out synthetic sentences and their labels (never seen in pretraining)."""
    import numpy as np

    rng = np.random.default_rng(1)
    X = synthetic_sentences(POSITIVE_CUES, 30, rng) + synthetic_sentences(NEGATIVE_CUES, 30, rng)
    return X, ["positive"] * 30 + ["negative"] * 30


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """A tiny GPT-2 language model pretrained for a few seconds on the synthetic corpus."""
    import numpy as np
    from transformers import AutoTokenizer, GPT2LMHeadModel

    rng = np.random.default_rng(0)
    corpus = [s + " it was good." for s in synthetic_sentences(POSITIVE_CUES, 300, rng)]
    corpus += [s + " it was bad." for s in synthetic_sentences(NEGATIVE_CUES, 300, rng)]
    directory = build_tiny_gpt2(
        tmp_path_factory.mktemp("tiny-lm"), corpus, vocab_size=300, n_embd=64, n_positions=128
    )
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = GPT2LMHeadModel.from_pretrained(directory)
    encoded = [tokenizer(text + tokenizer.eos_token)["input_ids"] for text in corpus]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(120):
        batch = [encoded[i] for i in rng.integers(0, len(encoded), 32)]
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), tokenizer.eos_token_id)
        labels = torch.full((len(batch), width), -100)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = labels[row, : len(tokens)] = torch.tensor(tokens)
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(directory)
    return directory
