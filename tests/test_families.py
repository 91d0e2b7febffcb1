"""Decoder families beyond GPT-2: tiny checkpoints of each, both estimators, every mode.

Each family is built by :func:`sklearn_gpt2.datasets.build_tiny_decoder` with its hub
checkpoints' tokenizer habits and loaded from its directory with ``from_pretrained``. The
families cover each position scheme (learned absolute: GPT-Neo, OPT with its offset of 2;
rotary: GPT-NeoX, Llama, Qwen2) and each tokenizer habit (no pad token: GPT-Neo, GPT-NeoX,
Llama; a BOS before every text: OPT, Llama).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier
from sklearn_gpt2.datasets import build_tiny_decoder
from sklearn_gpt2.models.families import family_of

FAMILIES = ["gpt_neo", "gpt_neox", "opt", "llama", "qwen2"]
#: The tokenizer habits the builder gives each family: (has a pad token, BOS before texts).
HABITS = {
    "gpt_neo": (False, False),
    "gpt_neox": (False, False),
    "opt": (True, True),
    "llama": (False, True),
    "qwen2": (True, False),
}
FAST = {"max_epochs": 1, "batch_size": 8, "lr": 1e-3, "precision": "float32", "random_state": 0}
SHORT = "a dull film"
LONGER = [
    "the acting is superb and the story is charming and the music is great " * 3,
    "what a movie this is",
]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    """(model type, checkpoint directory) of one tiny family checkpoint."""
    return request.param, build_tiny_decoder(tmp_path_factory.mktemp(request.param), request.param)


def assert_padding_invariant(clf):
    alone = clf.predict_proba([SHORT])
    batched = clf.set_params(batch_size=8).predict_proba([SHORT, *LONGER])[:1]
    np.testing.assert_allclose(batched, alone, atol=1e-5, rtol=0)


def test_the_table_knows_each_family(family):
    model_type, path = family
    from transformers import AutoConfig

    found = family_of(AutoConfig.from_pretrained(path))
    assert found.decoder and model_type in found.model_types


@pytest.mark.parametrize("tuning", ["full", "lora", "head"])
def test_sequence_classifier_is_padding_invariant(family, demo_data, tuning):
    model_type, path = family
    clf = GPT2SequenceClassifier(path, tuning=tuning, **FAST).fit(*demo_data)
    assert clf.module_.pads_left and clf.tokenizer_.padding_side == "left"
    has_pad, adds_bos = HABITS[model_type]
    if not has_pad:
        assert clf.tokenizer_.pad_token == clf.tokenizer_.eos_token
    first = clf._rows([SHORT]).token_ids[0][0]
    assert (first == clf.tokenizer_.bos_token_id) == adds_bos
    assert_padding_invariant(clf)


def test_lora_adapts_the_familys_own_projections(family, demo_data):
    _model_type, path = family
    from peft.tuners.lora import LoraLayer

    clf = GPT2SequenceClassifier(path, tuning="lora", **{**FAST, "max_epochs": 2})
    clf.fit(*demo_data)
    adapted = {
        name.rsplit(".", 1)[-1]
        for name, layer in clf.module_.model.named_modules()
        if isinstance(layer, LoraLayer)
    }
    assert adapted == set(family_of(clf.module_.model.config).lora_targets)
    lora_b = [p for n, p in clf.module_.model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.requires_grad for p in lora_b)
    # lora_B starts at zero: training moved it.
    assert any(p.abs().max() > 0 for p in lora_b)
    frozen = [
        p for n, p in clf.module_.model.named_parameters() if "lora_" not in n and "score" not in n
    ]
    assert not any(p.requires_grad for p in frozen)


@pytest.mark.parametrize("max_epochs", [0, 1])
def test_prompt_classifier_is_padding_invariant(family, demo_data, max_epochs):
    _, path = family
    clf = GPT2PromptClassifier(
        path, template="{text} it was",
        # A label word of several tokens scores its continuation from the key/value cache.
        label_words={"positive": "good fun", "negative": "bad"},
        **{**FAST, "max_epochs": max_epochs},
    ).fit(*demo_data)  # fmt: skip
    assert max(map(len, clf.label_token_ids_)) > 1
    assert_padding_invariant(clf)


def test_windows_keep_the_bos_token_and_save_and_load(family, demo_data, tmp_path):
    model_type, path = family
    clf = GPT2SequenceClassifier(path, max_length=12, truncation="window", tuning="lora", **FAST)
    clf.fit(*demo_data)
    rows = clf._rows([LONGER[0]])
    assert len(rows) > 2
    if HABITS[model_type][1]:
        assert all(row[0] == clf.tokenizer_.bos_token_id for row in rows.token_ids)
    assert all(len(row) == 12 for row in rows.token_ids)
    clf.save_pretrained(tmp_path / "saved")
    loaded = GPT2SequenceClassifier.from_pretrained(tmp_path / "saved")
    np.testing.assert_allclose(loaded.predict_proba(LONGER), clf.predict_proba(LONGER), atol=1e-6)


def test_features_do_not_depend_on_the_batch(family, demo_data):
    _, path = family
    clf = GPT2SequenceClassifier(path, tuning="head", **FAST).fit(*demo_data)
    tokenizer, module = clf.tokenizer_, clf.module_
    batch = tokenizer([SHORT, *LONGER], padding=True, return_tensors="pt")
    alone = tokenizer([SHORT], return_tensors="pt")
    with torch.inference_mode():
        together = module.features(batch["input_ids"], batch["attention_mask"])[0]
        single = module.features(alone["input_ids"], alone["attention_mask"])[0]
    assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]  # padded
    torch.testing.assert_close(together, single, atol=1e-5, rtol=0)


def test_learned_positions_would_shift_without_real_token_positions(tmp_path):
    # What the modules' position ids prevent: GPT-Neo numbers positions along the padded row,
    # so a left-padded text reads other position embeddings than alone.
    from transformers import AutoModel, AutoTokenizer

    path = build_tiny_decoder(tmp_path / "gpt-neo", "gpt_neo")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"
    batch = tokenizer([SHORT, *LONGER], padding=True, return_tensors="pt")
    alone = tokenizer([SHORT], return_tensors="pt")
    with torch.inference_mode():
        padded = model(**batch).last_hidden_state[0, -1]
        single = model(**alone).last_hidden_state[0, -1]
    assert (padded - single).abs().max() > 1e-3
