"""Bad input gets an error of the type scikit-learn would raise, naming the problem, where it is
and the fix (issue 2, item 7). Every case fails before any training starts, so these are fast."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.text.validation import check_labels


@pytest.fixture(scope="session")
def make(make_classifier):
    return make_classifier


@pytest.fixture(scope="module")
def fitted(tiny_gpt2, demo_data, make):
    return make(tiny_gpt2).fit(*demo_data)


def with_item(texts, index, item):
    texts = list(texts)
    texts[index] = item
    return texts


# ---------------------------------------------------------------- X
@pytest.mark.parametrize("method", ["fit", "predict", "predict_proba"])
def test_bare_string_is_rejected(method, tiny_gpt2, fitted, demo_data, make):
    clf = make(tiny_gpt2) if method == "fit" else fitted
    args = ("a single text", demo_data[1]) if method == "fit" else ("a single text",)
    with pytest.raises(
        TypeError,
        match=r"raw text documents expected, str object received\. Wrap a single text in a list",
    ):
        getattr(clf, method)(*args)


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan])
def test_missing_text_reports_index_and_fix(missing, tiny_gpt2, demo_data, make):
    X, y = demo_data
    with pytest.raises(ValueError, match=r"X\[7\] is a missing value") as error:
        make(tiny_gpt2).fit(with_item(X, 7, missing), y)
    assert "must be a string" in str(error.value)
    assert "fillna('')" in str(error.value)


def test_missing_text_in_pandas_series(tiny_gpt2, demo_data, make):
    pd = pytest.importorskip("pandas")
    X, y = demo_data
    series = pd.Series(with_item(X, 3, pd.NA), dtype="string")
    with pytest.raises(ValueError, match=r"X\[3\] is a missing value"):
        make(tiny_gpt2).fit(series, y)


@pytest.mark.parametrize(
    ("item", "type_name"), [(42, "int"), (3.5, "float"), (b"bytes", "bytes"), (["a"], "list")]
)
def test_non_string_text_reports_index_type_and_fix(item, type_name, tiny_gpt2, demo_data, make):
    X, y = demo_data
    with pytest.raises(TypeError, match=rf"X\[5\] is of type {type_name}") as error:
        make(tiny_gpt2).fit(with_item(X, 5, item), y)
    assert "every item must be a string" in str(error.value)
    fix = "decode('utf-8')" if type_name == "bytes" else "Convert it with str()"
    assert fix in str(error.value)


def test_bad_item_at_predict_time_reports_index(fitted):
    with pytest.raises(ValueError, match=r"X\[1\] is a missing value"):
        fitted.predict(["fine", None])


@pytest.mark.parametrize("empty", [[], (), np.array([], dtype=str)])
def test_empty_X(empty, tiny_gpt2, fitted, make):
    with pytest.raises(ValueError, match=r"Found empty X: 0 texts.*at least one text is required"):
        make(tiny_gpt2).fit(empty, [])
    with pytest.raises(ValueError, match="Found empty X"):
        fitted.predict(empty)


def test_two_dimensional_X_asks_for_the_text_column(tiny_gpt2, demo_data, make):
    X, y = demo_data
    with pytest.raises(ValueError, match=r"one-dimensional.*shape \(80, 1\).*df\['text'\]"):
        make(tiny_gpt2).fit(np.array(X)[:, None], y)


def test_non_iterable_X(tiny_gpt2, make):
    with pytest.raises(TypeError, match=r"X must be an iterable of strings.*got int"):
        make(tiny_gpt2).fit(5, [0])


def test_empty_string_is_a_valid_text(fitted, tiny_gpt2, demo_data, make):
    proba = fitted.predict_proba([""])
    assert proba.shape == (1, 2)
    np.testing.assert_allclose(proba.sum(), 1.0)
    assert fitted.predict([""])[0] in fitted.classes_
    X, y = demo_data
    clf = make(tiny_gpt2).fit(with_item(X, 0, ""), y)
    assert clf.predict(["", "a"]).shape == (2,)


# ---------------------------------------------------------------- y
@pytest.mark.parametrize("n_labels", [79, 81])
def test_inconsistent_lengths(n_labels, tiny_gpt2, demo_data, make):
    X, y = demo_data
    labels = (y * 2)[:n_labels]
    with pytest.raises(
        ValueError, match=rf"X has 80 texts but y has {n_labels} labels\. Pass exactly one label"
    ):
        make(tiny_gpt2).fit(X, labels)


def test_single_class(tiny_gpt2, demo_data, make):
    X, _ = demo_data
    with pytest.raises(ValueError, match=r"y has only one class \('positive'\).*at least two"):
        make(tiny_gpt2).fit(X, ["positive"] * len(X))


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_missing_label_reports_index_and_fix(missing, tiny_gpt2, demo_data, make):
    X, y = demo_data
    labels = [0.0, 1.0] * 40
    labels[11] = missing
    with pytest.raises(ValueError, match=r"y\[11\] is a missing value.*drop the unlabeled rows"):
        make(tiny_gpt2).fit(X, labels)
    with pytest.raises(ValueError, match=r"y\[2\] is a missing value"):
        make(tiny_gpt2).fit(X, with_item(y, 2, None))


def test_missing_label_in_pandas(tiny_gpt2, demo_data, make):
    pd = pytest.importorskip("pandas")
    X, y = demo_data
    with pytest.raises(ValueError, match=r"y\[4\] is a missing value"):
        make(tiny_gpt2).fit(pd.Series(X), pd.Series(with_item(y, 4, None)))


def test_y_is_required(tiny_gpt2, demo_data, make):
    with pytest.raises(ValueError, match=r"y is required.*clf\.fit\(texts, labels\)"):
        make(tiny_gpt2).fit(demo_data[0], None)


def test_continuous_y_is_rejected():
    with pytest.raises(ValueError, match="Unknown label type: 'continuous'"):
        check_labels([0.5, 1.5, 2.25], 3)


def test_mixed_label_types():
    with pytest.raises(TypeError, match=r"y mixes strings.*y\[1\] is int"):
        check_labels(["a", 1, "b"], 3)


# ---------------------------------------------------------------- parameters and checkpoint
def test_max_length_above_the_model_context(tiny_gpt2, demo_data, make):
    clf = make(tiny_gpt2, max_length=257)  # the tiny model's n_positions is 256
    with pytest.raises(
        ValueError,
        match=r"max_length=257 exceeds the model's context of 256.*"
        r"use max_length <= 256",
    ):
        clf.fit(*demo_data)
    with pytest.raises(NotFittedError):
        clf.predict(["a failed fit leaves nothing fitted"])


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "lr",
            0,
            r"'lr' parameter of GPT2SequenceClassifier must be a float in the range "
            r"\(0\.0, inf\)\. Got 0 instead",
        ),
        ("lr", -1e-3, r"'lr' parameter .* must be a float in the range \(0\.0, inf\)"),
        (
            "batch_size",
            0,
            r"'batch_size' parameter of GPT2SequenceClassifier must be an int in "
            r"the range \[1, inf\)\. Got 0 instead",
        ),
        ("batch_size", 2.5, r"'batch_size' parameter .* must be an int"),
        (
            "max_epochs",
            0,
            r"'max_epochs' parameter of GPT2SequenceClassifier must be an int in "
            r"the range \[1, inf\)\. Got 0 instead",
        ),
        ("max_epochs", -1, r"'max_epochs' parameter .* Got -1 instead"),
        ("max_length", 0, r"'max_length' parameter .* must be an int in the range \[1, inf\)"),
        ("precision", "fp8", r"'precision' parameter .* must be a str among"),
    ],
)
def test_invalid_parameters(name, value, expected, tiny_gpt2, demo_data, make):
    with pytest.raises(InvalidParameterError, match=expected):
        make(tiny_gpt2, **{name: value}).fit(*demo_data)


def test_predict_before_fit(tiny_gpt2, make):
    clf = make(tiny_gpt2)
    for method in (clf.predict, clf.predict_proba):
        with pytest.raises(NotFittedError, match=r"not fitted yet\. Call 'fit'"):
            method(["text"])
    with pytest.raises(NotFittedError):
        clf.score(["text"], ["positive"])


@pytest.mark.parametrize("name", ["no-such-org/no-such-model", "/no/such/local/directory"])
def test_checkpoint_not_found_says_how_to_work_offline(name, demo_data, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clf = GPT2SequenceClassifier(name, max_epochs=1, precision="float32")
    with pytest.raises(OSError, match=rf"Could not load the checkpoint '{name}'") as error:
        clf.fit(*demo_data)
    message = str(error.value)
    assert "local directory" in message
    if name.startswith("/"):
        assert "There is no local directory by that name" in message
    assert "save_pretrained(path)" in message
    assert "model_name_or_path=path" in message
    with pytest.raises(NotFittedError):
        clf.predict(["text"])
