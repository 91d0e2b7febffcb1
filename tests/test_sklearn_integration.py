"""The estimator inside scikit-learn's tools: Pipeline, cross-validation, grid search."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer


@pytest.fixture(scope="session")
def make(make_classifier):
    return make_classifier


def strip_html_breaks(texts):
    # Module-level (not a lambda) so the pipeline can be sent to joblib workers.
    return [text.replace("<br />", " ") for text in texts]


def test_pipeline_with_a_text_transformer(tiny_gpt2, demo_data, make):
    X, y = demo_data
    html = [f"{text}<br /><br />" if i % 3 == 0 else text for i, text in enumerate(X)]
    pipe = make_pipeline(FunctionTransformer(strip_html_breaks), make(tiny_gpt2))
    pipe.fit(html, y)
    plain = make(tiny_gpt2).fit(strip_html_breaks(html), y)
    np.testing.assert_array_equal(
        pipe.predict_proba(html), plain.predict_proba(strip_html_breaks(html))
    )
    assert pipe.classes_.tolist() == ["negative", "positive"]
    assert pipe.score(html, y) == plain.score(strip_html_breaks(html), y)


def test_cross_val_score_with_stratified_folds(tiny_gpt2, demo_data, make):
    X, y = demo_data
    scores = cross_val_score(make(tiny_gpt2), X, y, cv=StratifiedKFold(3))
    assert scores.shape == (3,)
    # The first fold's score is the accuracy of a model fitted on the other two, by hand.
    train, test = next(StratifiedKFold(3).split(X, y))
    by_hand = make(tiny_gpt2).fit([X[i] for i in train], [y[i] for i in train])
    assert scores[0] == by_hand.score([X[i] for i in test], [y[i] for i in test])


GRID = {"lr": [1e-3, 1e-4], "max_length": [8, 32]}


def grid_search(make, path, X, y, n_jobs):
    return GridSearchCV(make(path), GRID, cv=3, n_jobs=n_jobs).fit(X, y)


@pytest.fixture(scope="module")
def serial_search(make, tiny_gpt2, demo_data):
    X, y = demo_data
    return grid_search(make, tiny_gpt2, X[:48], y[:48], n_jobs=1)


def check_search(search, X, y):
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["lr"] in GRID["lr"]
    assert search.best_params_["max_length"] in GRID["max_length"]
    # Fitted on 48 texts, 3 folds: each split's score is an accuracy on 16 texts.
    splits = np.array([search.cv_results_[f"split{i}_test_score"] for i in range(3)])
    np.testing.assert_allclose(splits * 16, np.round(splits * 16), rtol=0, atol=1e-9)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], splits.mean(axis=0))
    best = search.best_estimator_
    assert best.max_length == search.best_params_["max_length"]
    assert best.predict(X[:5]).shape == (5,)
    assert search.score(X, y) == best.score(X, y)


def test_grid_search_over_lr_and_max_length(serial_search, demo_data):
    check_search(serial_search, *demo_data)


@pytest.mark.slow
def test_grid_search_with_two_worker_processes(make, serial_search, tiny_gpt2, demo_data):
    X, y = demo_data
    # joblib's loky workers receive the estimator pickled, and run in fresh processes.
    parallel = grid_search(make, tiny_gpt2, X[:48], y[:48], n_jobs=2)
    check_search(parallel, X, y)
    serial, parallel = serial_search.cv_results_, parallel.cv_results_
    assert serial["params"] == parallel["params"]
    # Workers may run torch with another number of threads, which can reorder float sums; a
    # near-tie flipping would move one fold's accuracy by one text in 16.
    np.testing.assert_allclose(
        serial["mean_test_score"], parallel["mean_test_score"], atol=1 / 15, rtol=0
    )
