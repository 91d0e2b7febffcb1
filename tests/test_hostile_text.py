"""Property tests: predict_proba on hostile text never crashes and keeps its contract.

One tiny model is fitted for the whole module; hypothesis examples are bounded so the module
runs in well under a minute.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_gpt2 import GPT2SequenceClassifier

EOS = "<|endoftext|>"
FRAGMENTS = [
    "\x00",  # NUL
    "\x07\x1b[31m\x7f",  # control characters, an ANSI escape
    "\u202e\u200f\u200e",  # RTL override, RTL and LTR marks
    "שלום עולם",  # right-to-left script
    "e\u0301\u0301\u0301\u0308",  # stacked combining characters
    "😀👩‍👩‍👧‍👦🏳️‍🌈",  # emoji, ZWJ sequences
    "\ufeff\u200b\u2028\u2029",  # BOM, zero-width space, line/paragraph separators
    "   \t\n\r\x0b\x0c",  # whitespace only
    "\ud800",  # a lone surrogate: valid Python str, not encodable UTF-8
    "\U0010ffff\uffff",  # the last code points
    EOS,  # the literal EOS string
    "",
]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

any_text = st.text(
    alphabet=st.characters(exclude_categories=()),  # surrogates (Cs) included
    max_size=60,
)
long_text = st.builds(
    lambda piece, n: (piece * n)[:100_000],
    st.sampled_from(["a", "😀", " ", EOS, "\u0301", "ab\x00"]),
    st.sampled_from([100, 100_000]),
)
one_text = st.one_of(
    any_text,
    st.sampled_from(FRAGMENTS),
    st.lists(st.one_of(any_text, st.sampled_from(FRAGMENTS)), max_size=5).map("".join),
    long_text,
)
# Lists with duplicates: some texts repeated at other positions.
texts_strategy = st.lists(one_text, min_size=1, max_size=8).flatmap(
    lambda texts: st.permutations(texts + texts[: len(texts) // 2])
)


@pytest.fixture(scope="module")
def clf(tiny_gpt2, demo_data):
    return GPT2SequenceClassifier(
        str(tiny_gpt2),
        max_epochs=1,
        max_length=64,
        batch_size=4,
        precision="float32",
        random_state=0,
    ).fit(*demo_data)


def _one_per_batch(clf, texts):
    """Predict every text alone (batch_size=1), in one call."""
    batch_size = clf.batch_size
    clf.batch_size = 1
    try:
        return clf.predict_proba(texts)
    finally:
        clf.batch_size = batch_size


def _check_rows(proba: np.ndarray, n: int) -> None:
    assert proba.shape == (n, 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


@SETTINGS
@given(texts=texts_strategy)
def test_predict_proba_on_hostile_lists(clf, texts):
    original = list(texts)
    proba = clf.predict_proba(texts)
    _check_rows(proba, len(texts))
    assert texts == original, "the caller's list was mutated"
    # Order is preserved: each row is the text's own prediction, wherever it sits.
    alone = _one_per_batch(clf, texts)
    np.testing.assert_allclose(proba, alone, atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(texts[::-1]), proba[::-1], atol=1e-5)
    labels = clf.predict(texts)
    assert len(labels) == len(texts) and set(labels) <= set(clf.classes_)


@settings(SETTINGS, max_examples=10)
@given(texts=st.lists(one_text, min_size=1, max_size=6))
def test_numpy_input_is_not_mutated(clf, texts):
    for array in (np.array(texts, dtype=object), np.array(texts)):
        before = array.copy()
        proba = clf.predict_proba(array)
        _check_rows(proba, len(texts))
        np.testing.assert_array_equal(array, before)
        assert array.dtype == before.dtype


def test_duplicates_get_identical_rows(clf):
    texts = ["same text", "a much longer text " * 20, "same text", "", "", EOS, EOS]
    proba = clf.predict_proba(texts)
    np.testing.assert_allclose(proba[0], proba[2], atol=1e-6)
    np.testing.assert_allclose(proba[3], proba[4], atol=1e-6)
    np.testing.assert_allclose(proba[5], proba[6], atol=1e-6)


def _unpadded(clf, text: str) -> np.ndarray:
    """Probabilities from one unpadded row through the bare model: the last token's state."""
    ids = torch.tensor([clf.tokenizer_(text)["input_ids"]])
    model = clf.module_.model
    with torch.no_grad():
        hidden = model.base_model(input_ids=ids).last_hidden_state[:, -1]
        return torch.softmax(model.score(hidden).double(), -1).numpy()


@pytest.mark.parametrize("text", ["a good film" + EOS, EOS, EOS + EOS, "bad" + EOS + EOS])
def test_text_ending_in_eos_is_not_mistaken_for_padding(clf, text):
    eos_id = clf.tokenizer_.eos_token_id
    assert clf.tokenizer_.pad_token_id == eos_id
    assert clf.tokenizer_(text)["input_ids"][-1] == eos_id, "the text must end in a real EOS"
    alone = clf.predict_proba([text])
    # Next to longer texts, it is left-padded with EOS ids: same probabilities.
    batch = clf.predict_proba(["a much longer neighbour " * 10, text, "another one " * 5])
    np.testing.assert_allclose(batch[1], alone[0], atol=1e-5)
    np.testing.assert_allclose(alone, _unpadded(clf, text), atol=1e-5)


def test_plain_transformers_pooling_would_confuse_eos_with_padding(clf):
    # Why the test above matters: pooling "the last token that is not the pad id" skips a real
    # trailing EOS, and so classifies a different token.
    text = "a good film" + EOS
    ids = torch.tensor([clf.tokenizer_(text)["input_ids"]])
    with torch.no_grad():
        logits = clf.module_.model(input_ids=ids).logits
    plain = torch.softmax(logits.double(), -1).numpy()
    assert not np.allclose(plain, clf.predict_proba([text]), atol=1e-5)
