"""The head-mode solve: the convex optimum, as good as a linear probe, weights honoured."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegressionCV
from transformers import AutoModel

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.training import head_solver
from sklearn_gpt2.training.head_solver import solve_linear_head

POSITIVE = ["wonderful", "superb", "brilliant", "lovely", "great", "charming"]
NEGATIVE = ["awful", "dull", "boring", "terrible", "clumsy", "tedious"]
NEUTRAL = ["the", "film", "story", "acting", "movie", "plot", "music", "and", "cast"]


def cue_texts(n, seed):
    """Sentences of neutral words and one cue, of either kind, with noisy labels."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        positive = bool(rng.integers(2))
        words = [*rng.choice(NEUTRAL, 4), rng.choice(POSITIVE if positive else NEGATIVE)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        flip = rng.random() < 0.1
        labels.append("positive" if positive != flip else "negative")
    return texts, np.array(labels)


def probe(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's notices of changing defaults
        return LogisticRegressionCV(max_iter=2000).fit(X, y)


def test_the_solution_is_the_optimum_and_matches_a_probe():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 30)) * rng.uniform(0.01, 10, size=30) + 3.0
    beta = rng.normal(size=30) / X.std(axis=0)
    y = ((X - X.mean(axis=0)) @ beta + rng.normal(size=900) * 2 > 0).astype(int)
    head = solve_linear_head(X[:600], y[:600], 2, intercept=True)
    ours = ((X[600:] @ head.weight.T + head.bias).argmax(axis=1) == y[600:]).mean()
    assert ours >= probe(X[:600], y[:600]).score(X[600:], y[600:]) - 0.01
    # The optimum: the gradient of the objective (at the chosen penalty) vanishes.
    center, scale = X[:600].mean(axis=0), X[:600].std(axis=0)
    theta = torch.tensor(
        np.concatenate([(head.weight * scale).ravel(), head.bias + head.weight @ center]),
        requires_grad=True,
    )
    Z = torch.from_numpy((X[:600] - center) / scale)
    Y = torch.eye(2, dtype=torch.float64)[torch.from_numpy(y[:600])]
    w = torch.full((600,), 1 / 600, dtype=torch.float64)
    head_solver._loss(theta, Z, Y, w, head.penalty, True).backward()
    assert theta.grad.abs().max() < 1e-4


def test_a_weight_counts_as_copies_of_a_row():
    rng = np.random.default_rng(1)
    X = torch.from_numpy(rng.normal(size=(40, 5)))
    labels = rng.integers(0, 3, 40)
    Y = torch.eye(3, dtype=torch.float64)[torch.from_numpy(labels)]
    weights = torch.from_numpy(rng.integers(0, 3, 40).astype(np.float64))
    start = torch.zeros(3 * 6, dtype=torch.float64)
    weighted = head_solver._solve(X, Y, weights / weights.sum(), 0.1, True, start)
    copies = torch.repeat_interleave(torch.arange(40), weights.long())
    n = len(copies)
    repeated = head_solver._solve(
        X[copies], Y[copies], torch.full((n,), 1 / n, dtype=torch.float64), 0.1, True, start
    )
    torch.testing.assert_close(weighted, repeated, atol=1e-5, rtol=0)


def last_token_features(checkpoint, tokenizer, texts):
    backbone = AutoModel.from_pretrained(checkpoint).eval()
    rows = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=32)["input_ids"]
        with torch.inference_mode():
            rows.append(backbone(input_ids=torch.tensor([ids])).last_hidden_state[0, -1].numpy())
    return np.vstack(rows)


def test_head_mode_by_default_is_as_accurate_as_a_probe(tiny_lm):
    X, y = cue_texts(300, seed=0)
    X_test, y_test = cue_texts(400, seed=1)
    clf = GPT2SequenceClassifier(str(tiny_lm), tuning="head", max_length=32, random_state=0)
    clf.fit(X, y)  # default lr and max_epochs: they do not change what fit finds
    tokenizer = clf.tokenizer_
    lr = probe(last_token_features(tiny_lm, tokenizer, X), y)
    probe_accuracy = lr.score(last_token_features(tiny_lm, tokenizer, X_test), y_test)
    assert probe_accuracy > 0.6
    assert clf.score(X_test, y_test) >= probe_accuracy - 0.01
    assert len(clf.history_) == 1 and clf.history_[0, "l2_penalty"] in head_solver.PENALTIES


def test_lr_and_max_epochs_do_not_change_the_fit(tiny_gpt2, demo_data):
    a = GPT2SequenceClassifier(str(tiny_gpt2), tuning="head", precision="float32", random_state=0)
    b = GPT2SequenceClassifier(
        str(tiny_gpt2), tuning="head", precision="float32", random_state=0, lr=0.5, max_epochs=9
    )
    texts = demo_data[0][:6]
    np.testing.assert_array_equal(
        a.fit(*demo_data).predict_proba(texts), b.fit(*demo_data).predict_proba(texts)
    )


@pytest.mark.parametrize("how", ["class_weight", "sample_weight"])
def test_weights_shift_the_solved_head(tiny_lm, how):
    X, y = cue_texts(300, seed=2)
    keep = np.flatnonzero((y == "negative") | (np.arange(len(y)) % 6 == 0))  # 1 in 6 positives
    X, y = [X[i] for i in keep], y[keep]
    X_test, y_test = cue_texts(300, seed=3)
    recalls = []
    for balanced in (False, True):
        clf = GPT2SequenceClassifier(str(tiny_lm), tuning="head", max_length=32, random_state=0)
        if how == "class_weight":
            clf.set_params(class_weight="balanced" if balanced else None)
            clf.fit(X, y)
        else:
            share = {label: np.mean(y == label) for label in set(y)}
            weights = [1 / share[label] if balanced else 1.0 for label in y]
            clf.fit(X, y, sample_weight=weights)
        predicted = clf.predict(X_test)
        recalls.append(np.mean(predicted[y_test == "positive"] == "positive"))
    assert recalls[1] > recalls[0] + 0.05, recalls
