import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sklearn_gpt2 import GPT2SequenceClassifier


def make(path, **params):
    defaults = dict(max_epochs=1, batch_size=8, lr=1e-3, precision="float32", random_state=0)
    defaults.update(params)
    return GPT2SequenceClassifier(path, **defaults)


def test_fit_predict_roundtrip(tiny_gpt2, demo_data):
    X, y = demo_data
    clf = make(tiny_gpt2)
    assert clf.fit(X, y) is clf
    assert list(clf.classes_) == ["negative", "positive"]
    pred = clf.predict(X)
    assert pred.shape == (len(X),) and set(pred) <= set(clf.classes_)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])


def test_predict_before_fit(tiny_gpt2):
    with pytest.raises(NotFittedError):
        make(tiny_gpt2).predict(["text"])


def test_padding_does_not_change_predictions(tiny_gpt2, demo_data):
    X, y = demo_data
    clf = make(tiny_gpt2).fit(X, y)
    texts = ["", "a", "a wonderful film", " ".join(X[:6]), "bad <|endoftext|>"]
    together = clf.predict_proba(texts)
    alone = np.vstack([clf.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(alone, together, atol=1e-5, rtol=0)
    clf.set_params(batch_size=1, max_length=200)
    np.testing.assert_allclose(clf.predict_proba(texts), together, atol=1e-5, rtol=0)
