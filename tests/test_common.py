"""scikit-learn conformance.

``check_estimator`` runs no checks for estimators whose input is text (its checks feed numeric
arrays), so the data-free checks are called one by one, and the contract that needs text data
is tested here with the tiny checkpoint.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils import estimator_checks

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier

ESTIMATORS = [GPT2SequenceClassifier, GPT2PromptClassifier]
DATA_FREE_CHECKS = [
    "check_parameters_default_constructible",
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_cloneable",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
    # Feeds numbers, but must stop at the NotFittedError before looking at them.
    "check_estimators_unfitted",
]


@pytest.mark.parametrize("estimator_class", ESTIMATORS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("check_name", DATA_FREE_CHECKS)
def test_sklearn_data_free_check(check_name, estimator_class):
    check = getattr(estimator_checks, check_name, None)
    if check is None:
        pytest.skip(f"{check_name} is not in this scikit-learn version")
    check(estimator_class.__name__, estimator_class())


@pytest.mark.parametrize("estimator_class", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_text_input_tags(estimator_class):
    tags = estimator_class().__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.estimator_type == "classifier" and tags.target_tags.required


def _clf(checkpoint, **params):
    params = {"max_epochs": 1, "batch_size": 8, "precision": "float32", "random_state": 0, **params}
    return GPT2SequenceClassifier(str(checkpoint), **params)


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data[0][:32], demo_data[1][:32]


@pytest.fixture(scope="module")
def fitted(tiny_gpt2, data):
    return _clf(tiny_gpt2).fit(*data)


def test_fit_returns_self(tiny_gpt2, data):
    clf = _clf(tiny_gpt2)
    assert clf.fit(*data) is clf


def test_refit_forgets_the_previous_fit(tiny_gpt2, data):
    texts, labels = data
    clf = _clf(tiny_gpt2, max_epochs=2).fit(texts, labels)
    three = [["a", "b", "c"][i % 3] for i in range(len(texts))]
    clf.set_params(max_epochs=1).fit(texts, three)
    assert list(clf.classes_) == ["a", "b", "c"] and clf.n_classes_ == 3
    assert len(clf.history_) == 1, "history must start over"
    assert clf.predict_proba(texts[:4]).shape == (4, 3)
    assert clf.module_.model.config.id2label == {0: "a", 1: "b", 2: "c"}


def test_clone_of_fitted_is_unfitted(fitted, data):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(data[0][:2])
    fitted.predict(data[0][:2])  # the original is untouched


def test_pickle_round_trip(fitted, data):
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), fitted.predict_proba(data[0]))


@pytest.mark.parametrize(
    "make_labels, expected_classes",
    [
        (lambda y: y, ["negative", "positive"]),
        (lambda y: [10 if v == "positive" else -1 for v in y], [-1, 10]),
        (lambda y: [v == "positive" for v in y], [False, True]),
    ],
    ids=["str", "int", "bool"],
)
def test_label_types(tiny_gpt2, data, make_labels, expected_classes):
    texts, labels = data
    y = make_labels(labels)
    clf = _clf(tiny_gpt2).fit(texts, y)
    assert clf.classes_.tolist() == expected_classes
    predicted = clf.predict(texts)
    assert {type(v) for v in predicted.tolist()} <= {type(expected_classes[0])}
    proba = clf.predict_proba(texts)
    np.testing.assert_array_equal(predicted, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(texts, y) == np.mean(predicted == np.asarray(y, dtype=object))


def test_sample_order_is_preserved(fitted, data):
    texts = list(data[0])
    proba = fitted.predict_proba(texts)
    permutation = np.random.default_rng(0).permutation(len(texts))
    shuffled = fitted.predict_proba([texts[i] for i in permutation])
    np.testing.assert_allclose(shuffled, proba[permutation], atol=1e-5)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "save_pretrained"])
def test_not_fitted_error(method, tmp_path):
    clf = GPT2SequenceClassifier()
    args = {"score": (["a text"], ["x"]), "save_pretrained": (tmp_path / "out",)}
    with pytest.raises(NotFittedError):
        getattr(clf, method)(*args.get(method, (["a text"],)))


@pytest.mark.slow
def test_grid_search_with_two_jobs(tiny_gpt2, data):
    search = GridSearchCV(
        _clf(tiny_gpt2),
        {"lr": [1e-4, 1e-3]},
        cv=StratifiedKFold(2),
        n_jobs=2,
        error_score="raise",
    )
    search.fit(*data)
    assert set(search.cv_results_["param_lr"]) == {1e-4, 1e-3}
    # Each fold's score is an accuracy on its 16 texts: a whole number of them over 16.
    for split in range(2):
        counts = search.cv_results_[f"split{split}_test_score"] * len(data[0]) / 2
        np.testing.assert_allclose(counts, np.round(counts), rtol=0, atol=1e-9)
    assert search.predict(data[0][:3]).shape == (3,)
