"""The skorch side, from a user's chair: callbacks, lengths and threads behave as expected."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from skorch.callbacks import Callback, EarlyStopping

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier

TEXTS = ["a wonderful film", "dull and tedious", "superb acting", "a boring plot"] * 4
LABELS = ["positive", "negative", "positive", "negative"] * 4
FAST = {"max_epochs": 1, "batch_size": 8, "random_state": 0, "precision": "float32"}


class CountBatches(Callback):
    def __init__(self):
        self.batches = 0

    def on_batch_end(self, net, **kwargs):
        self.batches += 1


@pytest.mark.parametrize("estimator", [GPT2SequenceClassifier, GPT2PromptClassifier])
def test_early_stopping_without_a_validation_split_is_refused_before_training(estimator, tiny_gpt2):
    counter = CountBatches()
    clf = estimator(tiny_gpt2, callbacks=[EarlyStopping(), counter], **FAST)
    fix = "validation_fraction" if estimator is GPT2SequenceClassifier else "monitor='train_loss'"
    with pytest.raises(ValueError, match=rf"EarlyStopping monitors 'valid_loss'.*{fix}"):
        clf.fit(TEXTS, LABELS)
    assert counter.batches == 0
    # The fix named works.
    if estimator is GPT2SequenceClassifier:
        clf.set_params(validation_fraction=0.25)
    else:
        clf.set_params(callbacks=[EarlyStopping(monitor="train_loss")])
    assert clf.fit(TEXTS, LABELS).predict(TEXTS[:2]).shape == (2,)


def test_a_max_length_beyond_the_context_is_refused_at_predict_with_the_fix(tiny_gpt2, tmp_path):
    clf = GPT2SequenceClassifier(tiny_gpt2, max_length=16, **FAST).fit(TEXTS, LABELS)
    context = clf.module_.model.config.n_positions
    for model in (clf, GPT2SequenceClassifier.from_pretrained(clf.save_pretrained(tmp_path / "s"))):
        model.set_params(max_length=context + 1)
        with pytest.raises(ValueError, match=rf"exceeds the model's context of {context} tokens.*"
                           rf"max_length <= {context}"):  # fmt: skip
            model.predict(["a film " * 400])
        model.set_params(max_length=context)
        assert model.predict(["a film " * 400]).shape == (1,)


def test_the_prompt_classifier_counts_its_label_words_in_the_context(tiny_gpt2):
    words = {"positive": "really rather good", "negative": "bad"}
    clf = GPT2PromptClassifier(tiny_gpt2, label_words=words, max_length=16, **FAST)
    clf.fit(TEXTS, LABELS)
    context = clf.module_.model.config.n_positions
    longest = max(map(len, clf.label_token_ids_))
    clf.set_params(max_length=context)
    with pytest.raises(ValueError, match=rf"plus the longest label word \({longest} tokens\).*"
                       rf"max_length <= {context - longest}"):  # fmt: skip
        clf.predict(["a film " * 400])
    clf.set_params(max_length=context - longest)
    assert clf.predict(["a film " * 400]).shape == (1,)


def test_predicting_from_another_thread_while_fit_runs_waits_for_the_fit(tiny_gpt2):
    started = threading.Event()

    class Slow(Callback):
        def on_batch_end(self, net, **kwargs):
            started.set()
            time.sleep(0.05)

    clf = GPT2SequenceClassifier(tiny_gpt2, max_epochs=3, batch_size=4, random_state=0,
                                 precision="float32", callbacks=[Slow()])  # fmt: skip
    errors = []
    fit = threading.Thread(target=lambda: clf.fit(TEXTS, LABELS))
    fit.start()
    assert started.wait(30)
    try:
        during = clf.predict_proba(TEXTS[:3])  # blocks until the fit has finished
    except Exception as error:
        errors.append(error)
    fit.join()
    assert errors == []
    assert len(clf.history_) == 3
    np.testing.assert_array_equal(during, clf.predict_proba(TEXTS[:3]))


def test_apple_gpus_are_refused_with_the_fix_before_any_work(tiny_gpt2):
    clf = GPT2SequenceClassifier(tiny_gpt2, device="mps", **FAST)
    with pytest.raises(ValueError, match=r"not 'mps': Apple GPUs are not supported yet, use 'cpu'"):
        clf.fit(TEXTS, LABELS)
