"""What a careful user expects at the edges: a right answer, or a clear refusal before any work.

Weights at the ends of float64, devices that cannot compute, label words a prompt cannot tell
apart, and checkpoints whose weights or activations are not finite.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from transformers import GPT2LMHeadModel

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier

FAST = {"max_epochs": 1, "batch_size": 8, "lr": 1e-3, "precision": "float32", "random_state": 0}
TEMPLATE = "{text} it was"
WORDS = {"positive": "good", "negative": "bad"}


def sequence(path, **params):
    return GPT2SequenceClassifier(str(path), **{**FAST, **params})


def prompt(path, **params):
    defaults = {"template": TEMPLATE, "label_words": WORDS, "max_length": 64}
    defaults.update(precision="float32", random_state=0)
    return GPT2PromptClassifier(str(path), **{**defaults, **params})


# ---------------------------------------------------------------------------- sample_weight
@pytest.mark.parametrize("scale", [1e-46, 1e-300, 1e300, 1.7e308])
def test_uniform_weights_of_any_float64_size_train_like_no_weights(tiny_gpt2, demo_data, scale):
    X, y = demo_data
    ones = sequence(tiny_gpt2).fit(X, y, sample_weight=np.ones(len(X)))
    scaled = sequence(tiny_gpt2).fit(X, y, sample_weight=np.full(len(X), scale))
    assert scaled.history_[-1, "train_loss"] > 0  # it trained
    np.testing.assert_array_equal(scaled.predict_proba(X), ones.predict_proba(X))


def test_weights_are_scale_invariant_with_class_weight(tiny_gpt2, demo_data):
    X, y = demo_data
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.5, 2.0, len(X))
    class_weight = {"positive": 1e10, "negative": 1.0}
    plain = sequence(tiny_gpt2, class_weight=class_weight).fit(X, y, sample_weight=weights)
    huge = sequence(tiny_gpt2, class_weight=class_weight).fit(X, y, sample_weight=weights * 1e298)
    np.testing.assert_allclose(huge.predict_proba(X), plain.predict_proba(X), rtol=0, atol=1e-6)


def test_tiny_weights_train_in_partial_fit(tiny_gpt2, demo_data):
    X, y = demo_data
    clf = sequence(tiny_gpt2)
    clf.partial_fit(X, y, classes=["negative", "positive"], sample_weight=np.full(len(X), 1e-46))
    before = clf.predict_proba(X)
    clf.partial_fit(X, y, sample_weight=np.full(len(X), 1e-46))
    assert clf.history_[-1, "train_loss"] > 0
    assert not np.array_equal(clf.predict_proba(X), before)


def test_weight_ratios_beyond_float32_are_refused_before_training(tiny_gpt2, demo_data):
    X, y = demo_data
    weights = np.ones(len(X))
    weights[0], weights[1] = 1e300, 1e-300
    clf = sequence(tiny_gpt2)
    with pytest.raises(ValueError, match=r"differ by a factor.*float32.*weight of 0"):
        clf.fit(X, y, sample_weight=weights)
    with pytest.raises(NotFittedError):
        clf.predict(X[:1])


def test_zero_weights_still_drop_texts(tiny_gpt2, demo_data):
    X, y = demo_data
    with pytest.raises(ValueError, match="not all zero"):
        sequence(tiny_gpt2).fit(X, y, sample_weight=np.zeros(len(X)))
    mask = np.arange(len(X)) % 3 > 0
    ones = sequence(tiny_gpt2).fit(X, y, sample_weight=mask * 1.0)
    tiny = sequence(tiny_gpt2).fit(X, y, sample_weight=mask * 1e-40)
    np.testing.assert_array_equal(tiny.predict_proba(X), ones.predict_proba(X))


# ---------------------------------------------------------------------------- devices
@pytest.mark.parametrize("device", ["meta", torch.device("meta"), "meta:0"])
@pytest.mark.parametrize("make", [sequence, prompt])
def test_a_device_that_holds_no_data_is_refused(tiny_lm, demo_data, device, make):
    clf = make(tiny_lm, device=device)
    with pytest.raises(ValueError, match=r"'device' parameter.*hold and run a model.*not 'meta'"):
        clf.fit(*demo_data)
    with pytest.raises(NotFittedError):
        clf.predict(["a text"])


# ---------------------------------------------------------------------------- label words
def test_a_label_word_beginning_another_is_refused(tiny_lm, cue_sentences):
    words = {"positive": "good", "negative": "good indeed"}
    with pytest.raises(ValueError, match=r"'good indeed'.*begins with.*'good'.*never be predicted"):
        prompt(tiny_lm, label_words=words).fit(*cue_sentences)


def test_class_names_beginning_one_another_are_refused(tiny_lm, cue_sentences):
    X, y = cue_sentences
    labels = ["positive indeed" if label == "positive" else "positive" for label in y]
    with pytest.raises(ValueError, match=r"'positive indeed'.*begins with.*'positive'"):
        prompt(tiny_lm, label_words=None).fit(X, labels)


def test_words_sharing_only_a_first_token_can_both_win(tiny_lm, cue_sentences):
    words = {"positive": "good it was good", "negative": "good so bad"}
    X, y = cue_sentences
    clf = prompt(tiny_lm, label_words=words).fit(X, y)
    assert clf.label_token_ids_[0][0] == clf.label_token_ids_[1][0]
    # Each class's score depends on its own continuation: swapping the words swaps the scores.
    swapped = prompt(
        tiny_lm, label_words={"positive": words["negative"], "negative": words["positive"]}
    )
    np.testing.assert_allclose(swapped.fit(X, y).predict_proba(X), clf.predict_proba(X)[:, ::-1])


@pytest.mark.parametrize(
    ("word", "pattern"),
    [
        ("good ", r"'good ' of class 'positive'.*whitespace.*'good'"),
        (" good", r"' good' of class 'positive'.*whitespace.*'good'"),
        ("good\n", r"whitespace.*'good'"),
        ("", r"'' of class 'positive'.*empty or only whitespace"),
        ("  ", r"empty or only whitespace"),
        ("\t", r"empty or only whitespace"),
    ],
)
def test_label_words_with_surrounding_whitespace_are_refused(tiny_lm, cue_sentences, word, pattern):
    clf = prompt(tiny_lm, label_words={"positive": word, "negative": "bad"})
    with pytest.raises(ValueError, match=pattern):
        clf.fit(*cue_sentences)
    with pytest.raises(NotFittedError):
        clf.predict(["a text"])


def test_class_names_with_whitespace_need_label_words(tiny_lm, cue_sentences):
    X, y = cue_sentences
    labels = [label + " " for label in y]
    with pytest.raises(ValueError, match=r"str\(label\).*whitespace.*in label_words"):
        prompt(tiny_lm, label_words=None).fit(X, labels)
    words = {"positive ": "good", "negative ": "bad"}
    assert prompt(tiny_lm, label_words=words).fit(X, labels).score(X, labels) >= 0.9


def test_fitted_label_words_are_used_until_refit(tiny_lm, cue_sentences):
    X, y = cue_sentences
    clf = prompt(tiny_lm).fit(X, y)
    proba, tokens = clf.predict_proba(X), clf.label_token_ids_
    clf.set_params(label_words={"positive": "bad", "negative": "good"})
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert clf.label_token_ids_ == tokens
    with pytest.raises(ValueError, match="fitted with"):
        clf.save_pretrained("unused-directory")
    swapped = clf.fit(X, y)
    assert swapped.score(X, y) <= 0.1  # the new words, once refit


# ---------------------------------------------------------------------------- non-finite models
def _altered_copy(source, target, change):
    shutil.copytree(source, target)
    model = GPT2LMHeadModel.from_pretrained(target)
    with torch.no_grad():
        change(model)
    model.save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def nan_lm(tiny_lm, tmp_path_factory):
    def poison(model):
        model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")

    return _altered_copy(tiny_lm, tmp_path_factory.mktemp("nan") / "lm", poison)


@pytest.fixture(scope="module")
def overflowing_lm(tiny_lm, tmp_path_factory):
    """Finite weights whose last layer norm overflows float32: every feature is infinite."""

    def overflow(model):
        model.transformer.ln_f.weight.fill_(3e38)
        model.transformer.ln_f.bias.fill_(3e38)

    return _altered_copy(tiny_lm, tmp_path_factory.mktemp("overflow") / "lm", overflow)


@pytest.mark.parametrize(
    "make",
    [
        lambda path: prompt(path),
        lambda path: prompt(path, max_epochs=1, lr=1e-3),
        lambda path: sequence(path),
        lambda path: sequence(path, tuning="head"),
        lambda path: sequence(path, tuning="lora"),
    ],
    ids=["zero-shot", "prompt-tuning", "full", "head", "lora"],
)
def test_a_checkpoint_with_nan_weights_is_refused_at_fit(nan_lm, cue_sentences, make):
    clf = make(nan_lm)
    with pytest.raises(ValueError, match=r"checkpoint '.*lm' holds non-finite.*c_fc\.weight"):
        clf.fit(*cue_sentences)
    with pytest.raises(NotFittedError):
        clf.predict(cue_sentences[0][:1])


def test_zero_shot_scores_that_overflow_are_refused(overflowing_lm, cue_sentences):
    X, _ = cue_sentences
    clf = prompt(overflowing_lm).fit(*cue_sentences)
    with pytest.raises(ValueError, match=r"label scores of the checkpoint '.*lm' are not finite"):
        clf.predict_proba(X)
    with pytest.raises(ValueError, match="not finite"):
        clf.predict(X[:1])


def test_head_features_that_overflow_blame_the_checkpoint(overflowing_lm, cue_sentences):
    with pytest.raises(ValueError, match=r"features the checkpoint '.*lm' computes are not finite"):
        sequence(overflowing_lm, tuning="head").fit(*cue_sentences)
