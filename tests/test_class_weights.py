"""``class_weight`` and ``sample_weight``: they change what is learned, and bad ones are refused.

Head mode on the tiny GPT-2 keeps each fit cheap; the weights enter the same loss in every
mode (``TextNet.get_loss``). Weights never reach the module's ``forward`` (skorch's default for
fit parameters): each row carries its text's index, and the loss looks the weight up.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.pipeline import Pipeline
from sklearn.utils.class_weight import compute_class_weight

from sklearn_gpt2 import GPT2SequenceClassifier


def make(checkpoint, **params):
    defaults = dict(
        tuning="head",
        lr=2e-2,
        max_epochs=4,
        max_length=16,
        batch_size=8,
        precision="float32",
        random_state=0,
    )
    return GPT2SequenceClassifier(str(checkpoint), **{**defaults, **params})


def positive_share(clf, X):
    return clf.predict_proba(X)[:, list(clf.classes_).index("positive")].mean()


def test_a_heavy_class_weight_raises_that_class_share(tiny_gpt2, demo_data):
    X, y = demo_data
    heavy_pos = make(tiny_gpt2, class_weight={"positive": 10.0}).fit(X, y)
    heavy_neg = make(tiny_gpt2, class_weight={"negative": 10.0}).fit(X, y)
    plain = make(tiny_gpt2).fit(X, y)
    assert positive_share(heavy_pos, X) > positive_share(plain, X) > positive_share(heavy_neg, X)


def test_sample_weight_on_one_class_raises_its_share(tiny_gpt2, demo_data):
    X, y = demo_data
    weights = np.where(np.asarray(y) == "positive", 10.0, 1.0)
    weighted = make(tiny_gpt2, tuning="full", lr=1e-3).fit(X, y, sample_weight=weights)
    plain = make(tiny_gpt2, tuning="full", lr=1e-3).fit(X, y)
    assert positive_share(weighted, X) > positive_share(plain, X)
    assert "_loss_weights_" not in vars(weighted)  # used by that fit only


def test_equal_weights_change_nothing(tiny_gpt2, demo_data):
    X, y = demo_data
    plain = make(tiny_gpt2, tuning="lora", lr=5e-3, max_epochs=1).fit(X, y)
    ones = make(tiny_gpt2, tuning="lora", lr=5e-3, max_epochs=1).fit(
        X, y, sample_weight=np.full(len(X), 3.0)
    )
    np.testing.assert_allclose(ones.predict_proba(X), plain.predict_proba(X), atol=1e-6)


def test_balanced_is_sklearns_balanced_weights(tiny_gpt2, demo_data):
    X, y = demo_data
    positives = [i for i, label in enumerate(y) if label == "positive"]
    keep = [i for i, label in enumerate(y) if label == "negative"] + positives[:5]
    X, y = [X[i] for i in keep], np.asarray(y)[keep]  # 40 negative, 5 positive
    classes = np.unique(y)
    explicit = dict(
        zip(classes, compute_class_weight("balanced", classes=classes, y=y), strict=True)
    )
    balanced = make(tiny_gpt2, class_weight="balanced").fit(X, y)
    by_dict = make(tiny_gpt2, class_weight=explicit).fit(X, y)
    np.testing.assert_allclose(balanced.predict_proba(X), by_dict.predict_proba(X), atol=1e-6)
    assert positive_share(balanced, X) > positive_share(make(tiny_gpt2).fit(X, y), X)


def test_sample_weight_is_routed_through_a_pipeline(tiny_gpt2, demo_data):
    X, y = demo_data
    weights = np.where(np.asarray(y) == "positive", 5.0, 1.0)
    direct = make(tiny_gpt2).fit(X, y, sample_weight=weights)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline([("clf", make(tiny_gpt2).set_fit_request(sample_weight=True))])
        pipe.fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(X))


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.ones(3), r"one finite, non-negative weight per text \(80 texts\).*shape"),
        (-np.ones(80), "Negative values"),
        (np.r_[np.nan, np.ones(79)], "NaN"),
        (np.zeros(80), "non-zero"),
    ],
)
def test_bad_sample_weight_is_refused(tiny_gpt2, demo_data, weights, match):
    clf = make(tiny_gpt2)
    with pytest.raises(ValueError, match=match):
        clf.fit(*demo_data, sample_weight=weights)
    assert not hasattr(clf, "classes_")


@pytest.mark.parametrize(
    ("class_weight", "match"),
    [
        ({"neutral": 2.0}, r"labels that are not in y: \['neutral'\]"),
        ({"positive": -1.0}, "finite non-negative number"),
        ({"positive": float("nan")}, "finite non-negative number"),
        ("balance", "The 'class_weight' parameter of GPT2SequenceClassifier"),
    ],
)
def test_bad_class_weight_is_refused(tiny_gpt2, demo_data, class_weight, match):
    with pytest.raises(ValueError, match=match):
        make(tiny_gpt2, class_weight=class_weight).fit(*demo_data)


def test_partial_fit_takes_weights_too(tiny_gpt2, demo_data):
    X, y = demo_data
    clf = make(tiny_gpt2, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="per text"):
        clf.partial_fit(X, y, sample_weight=[1.0])
    clf.partial_fit(X, y, sample_weight=np.ones(len(X)))
    assert len(clf.history_) == 2
