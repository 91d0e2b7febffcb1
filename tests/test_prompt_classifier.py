"""GPT2PromptClassifier: zero-shot, few-shot and prompt-tuned classification with the LM head.

The language model is tiny and pretrained in the session on a synthetic corpus whose cue words
predict "good" or "bad" after "it was" (see ``conftest.tiny_lm``); the test sentences are new.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from unittest import mock

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._param_validation import InvalidParameterError
from transformers import AutoTokenizer, GPT2LMHeadModel

from sklearn_gpt2 import GPT2PromptClassifier
from sklearn_gpt2.text.rows import IGNORE_INDEX

TEMPLATE = "{text} it was"
WORDS = {"positive": "good", "negative": "bad"}
PHRASES = {"positive": "good it was good", "negative": "bad so bad"}


def make(path, **params):
    defaults = dict(
        template=TEMPLATE, label_words=WORDS, max_length=64, precision="float32", random_state=0
    )
    return GPT2PromptClassifier(path, **{**defaults, **params})


@pytest.fixture(scope="module")
def zero_shot(tiny_lm, cue_sentences):
    return make(tiny_lm).fit(*cue_sentences)


def test_zero_shot_is_far_above_chance(zero_shot, cue_sentences):
    assert zero_shot.score(*cue_sentences) >= 0.9
    assert zero_shot.classes_.tolist() == ["negative", "positive"]


def test_label_words_are_scored_with_the_leading_space(zero_shot, tiny_lm):
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    expected = [tokenizer(" bad")["input_ids"], tokenizer(" good")["input_ids"]]
    assert zero_shot.label_token_ids_ == expected
    assert tokenizer(" good")["input_ids"] != tokenizer("good")["input_ids"]


def brute_force_log_probs(path, prompt, answers):
    """Total log-probability of each answer after the prompt, one full forward pass each."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = GPT2LMHeadModel.from_pretrained(path).eval()
    prompt_ids = tokenizer(prompt)["input_ids"]
    totals = []
    for answer in answers:
        ids = prompt_ids + tokenizer(answer)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].double()
        log_probs = torch.log_softmax(logits, -1)
        totals.append(
            sum(log_probs[t - 1, ids[t]].item() for t in range(len(prompt_ids), len(ids)))
        )
    return np.array(totals)


@pytest.mark.parametrize("words", [WORDS, PHRASES], ids=["one token", "several tokens"])
def test_probabilities_are_the_softmax_of_total_label_log_probabilities(
    tiny_lm, cue_sentences, words
):
    clf = make(tiny_lm, label_words=words).fit(*cue_sentences)
    text = cue_sentences[0][0]
    totals = brute_force_log_probs(
        tiny_lm, text + " it was", [" " + words["negative"], " " + words["positive"]]
    )
    expected = np.exp(totals - totals.max()) / np.exp(totals - totals.max()).sum()
    np.testing.assert_allclose(clf.predict_proba([text])[0], expected, atol=1e-5)


@pytest.mark.parametrize("words", [WORDS, PHRASES], ids=["one token", "several tokens"])
def test_padding_invariance(tiny_lm, cue_sentences, words):
    X = [*cue_sentences[0][:6], "", "great", "the film and the plot and the cast and music"]
    clf = make(tiny_lm, label_words=words).fit(*cue_sentences)
    batched = clf.predict_proba(X)
    alone = np.vstack([clf.predict_proba([text]) for text in X])
    np.testing.assert_allclose(batched, alone, atol=1e-5, rtol=0)
    for batch_size in (2, 3):
        np.testing.assert_allclose(
            clf.set_params(batch_size=batch_size).predict_proba(X), alone, atol=1e-5, rtol=0
        )


@pytest.mark.parametrize(("words", "passes"), [(WORDS, 1), (PHRASES, 2)])
def test_one_prompt_pass_per_batch_and_one_more_for_all_continuations(
    tiny_lm, cue_sentences, words, passes
):
    clf = make(tiny_lm, label_words=words, batch_size=64).fit(*cue_sentences)
    model = clf.module_.model
    with mock.patch.object(model, "forward", wraps=model.forward) as forward:
        clf.predict_proba(cue_sentences[0])
    assert forward.call_count == passes
    if passes == 2:
        # The continuation pass runs every class's label tokens after the cached prompt.
        continuation = forward.call_args_list[1].kwargs["input_ids"]
        assert continuation.shape[0] == len(cue_sentences[0]) * 2


def test_prompt_tuning_teaches_new_label_words(tiny_lm, cue_sentences):
    X, y = cue_sentences
    unseen = {"positive": "music", "negative": "plot"}
    zero = make(tiny_lm, label_words=unseen).fit(X, y).score(X, y)
    tuned = make(tiny_lm, label_words=unseen, max_epochs=4, lr=1e-3, batch_size=16).fit(X, y)
    assert zero < 0.8
    assert tuned.score(X, y) >= 0.85 and tuned.score(X, y) > zero + 0.15
    losses = tuned.history_[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_training_rows_take_loss_on_label_tokens_only(zero_shot, cue_sentences):
    texts = cue_sentences[0][:2]
    token_ids = zero_shot._rows(texts)
    dataset = zero_shot._make_dataset(token_ids, np.array([1, 0]))
    for i, label in enumerate([1, 0]):
        ids, target, _, _ = dataset[i]
        answer = zero_shot.label_token_ids_[label]
        assert ids[-len(answer) :].tolist() == answer
        assert target[-len(answer) :].tolist() == answer
        assert set(target[: -len(answer)].tolist()) == {IGNORE_INDEX}


def test_few_shot_prompts_fit_the_context(tiny_lm, cue_sentences):
    X, y = cue_sentences
    clf = make(tiny_lm, n_shots=2, max_length=96).fit(X, y)
    assert clf.prompt_template_.endswith(TEMPLATE)
    assert clf.prompt_template_.count(" it was good") == 2
    assert clf.prompt_template_.count(" it was bad") == 2
    lengths = clf._rows(X).lengths.tolist()
    assert max(lengths) <= 96
    # (The tiny model saw single sentences only, so examples do not raise its accuracy.)
    again = make(tiny_lm, n_shots=2, max_length=96).fit(X, y)
    assert again.prompt_template_ == clf.prompt_template_, "the examples are seeded"
    with pytest.raises(ValueError, match="no room for the text"):
        make(tiny_lm, n_shots=3, max_length=12).fit(X, y)
    with pytest.raises(ValueError, match="has only 30"):
        make(tiny_lm, n_shots=31).fit(X, y)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"template": "no text field"}, ValueError, "exactly once"),
        ({"label_words": {"positive": "", "negative": "bad"}}, ValueError, "tokenizes to nothing"),
        ({"label_words": {"positive": "bad", "negative": "bad"}}, ValueError, "same label words"),
        ({"label_words": {"positive": "good"}}, ValueError, "'negative', which has no entry"),
        ({"label_words": {"positive": 1, "negative": "bad"}}, TypeError, "must be a string"),
        ({"n_shots": -1}, InvalidParameterError, "n_shots"),
        ({"max_length": 200}, ValueError, "context of 128 tokens"),
    ],
)
def test_bad_input_gets_a_clear_error(tiny_lm, cue_sentences, params, error, message):
    with pytest.raises(error, match=message):
        make(tiny_lm, **params).fit(*cue_sentences)


def test_not_fitted(tiny_lm):
    with pytest.raises(NotFittedError):
        make(tiny_lm).predict(["text"])


def test_sklearn_tools(tiny_lm, cue_sentences):
    X, y = cue_sentences
    clf = make(tiny_lm)
    assert clone(clf).get_params() == clf.get_params()
    assert "validation_fraction" not in clf.get_params()
    pipe = make_pipeline(FunctionTransformer(_lower), clf).fit(X, y)
    assert pipe.score(X, y) >= 0.9
    scores = cross_val_score(make(tiny_lm), X, y, cv=StratifiedKFold(3))
    assert scores.min() >= 0.8
    search = GridSearchCV(
        make(tiny_lm),
        {
            "template": ["{text} it was", "{text}"],
            "label_words": [WORDS, {"positive": "music", "negative": "plot"}],
        },
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"template": "{text} it was", "label_words": WORDS}


def _lower(texts):
    return [text.lower() for text in texts]


def test_integer_labels_with_label_words(tiny_lm, cue_sentences):
    X, y = cue_sentences
    clf = make(tiny_lm, label_words={1: "good", 0: "bad"}).fit(X, [int(v == "positive") for v in y])
    assert (
        clf.classes_.tolist() == [0, 1] and clf.score(X, [int(v == "positive") for v in y]) >= 0.9
    )


@pytest.mark.slow
def test_joblib_in_a_fresh_process_and_save_pretrained(tiny_lm, cue_sentences, tmp_path):
    X, y = cue_sentences
    clf = make(tiny_lm, n_shots=1, label_words=PHRASES).fit(X, y)
    expected = clf.predict_proba(X)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.save(tmp_path / "X.npy", np.array(X))
    code = (
        "import joblib, numpy as np, sys, torch; torch.set_num_threads(1);"
        f"clf = joblib.load({str(tmp_path / 'clf.joblib')!r});"
        f"X = list(np.load({str(tmp_path / 'X.npy')!r}));"
        f"np.save({str(tmp_path / 'out.npy')!r}, clf.predict_proba(X))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    loaded = GPT2PromptClassifier.from_pretrained(clf.save_pretrained(tmp_path / "dir"))
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.prompt_template_ == clf.prompt_template_
    assert pickle.loads(pickle.dumps(clf)).label_token_ids_ == clf.label_token_ids_


def test_a_sequence_classifier_directory_is_not_a_prompt_classifier(tiny_gpt2, demo_data, tmp_path):
    from sklearn_gpt2 import GPT2SequenceClassifier

    seq = GPT2SequenceClassifier(tiny_gpt2, max_epochs=1, random_state=0).fit(*demo_data)
    with pytest.raises(ValueError, match="holds a GPT2SequenceClassifier"):
        GPT2PromptClassifier.from_pretrained(seq.save_pretrained(tmp_path / "seq"))


def test_sample_weight_steers_prompt_tuning(tiny_lm, cue_sentences):
    X, y = cue_sentences
    unseen = {"positive": "music", "negative": "plot"}
    params = dict(label_words=unseen, max_epochs=3, lr=1e-3, batch_size=16)
    even = make(tiny_lm, **params).fit(X, y)
    only_positive = make(tiny_lm, **params).fit(
        X, y, sample_weight=[1.0 if label == "positive" else 0.0 for label in y]
    )
    column = list(even.classes_).index("positive")
    assert (
        only_positive.predict_proba(X)[:, column].mean()
        > even.predict_proba(X)[:, column].mean() + 0.1
    )
    with pytest.raises(ValueError, match="sample_weight"):
        make(tiny_lm, **params).fit(X, y, sample_weight=[1.0] * 3)


def test_partial_fit_refuses_a_new_prompt(tiny_lm, cue_sentences):
    X, y = cue_sentences
    clf = make(tiny_lm, max_epochs=1, batch_size=16).fit(X, y)
    clf.set_params(template="{text} so it was")
    with pytest.raises(ValueError, match="fitted with template="):
        clf.partial_fit(X, y)
