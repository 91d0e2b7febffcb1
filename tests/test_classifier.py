import inspect

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Checkpoint, EarlyStopping
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.models.sequence import SequenceClassifierModule


@pytest.fixture(scope="session")
def make(make_classifier):
    return make_classifier


def test_fit_predict_roundtrip(tiny_gpt2, demo_data, make):
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


def test_predict_before_fit(tiny_gpt2, make):
    with pytest.raises(NotFittedError):
        make(tiny_gpt2).predict(["text"])


def test_padding_does_not_change_predictions(tiny_gpt2, demo_data, make):
    X, y = demo_data
    clf = make(tiny_gpt2).fit(X, y)
    texts = ["", "a", "a wonderful film", " ".join(X[:6]), "bad <|endoftext|>"]
    together = clf.predict_proba(texts)
    alone = np.vstack([clf.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(alone, together, atol=1e-5, rtol=0)
    clf.set_params(batch_size=1, max_length=200)
    np.testing.assert_allclose(clf.predict_proba(texts), together, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- inputs and outputs
@pytest.fixture(scope="module")
def fitted(tiny_gpt2, demo_data, make):
    return make(tiny_gpt2).fit(*demo_data)


def as_pandas_series(texts):
    pd = pytest.importorskip("pandas")
    return pd.Series(texts, index=range(100, 100 + len(texts)))


@pytest.mark.parametrize(
    "container",
    [list, tuple, np.array, lambda t: np.array(t, dtype=object), as_pandas_series],
    ids=["list", "tuple", "ndarray", "object-ndarray", "pandas"],
)
def test_X_containers_give_the_same_result(container, fitted, demo_data, make):
    X, y = demo_data
    expected = fitted.predict_proba(X[:10])
    np.testing.assert_array_equal(fitted.predict_proba(container(X[:10])), expected)
    clf = make(fitted.model_name_or_path).fit(container(X), container(y))
    np.testing.assert_array_equal(clf.predict_proba(X[:10]), expected)


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        (["positive", "negative"], ["negative", "positive"]),
        (["b", "c", "a"], ["a", "b", "c"]),
        ([1, 0], [0, 1]),
        ([7, -3, 2], [-3, 2, 7]),
        ([True, False], [False, True]),
    ],
)
def test_label_types_and_sorted_classes(labels, classes, tiny_gpt2, demo_data, make):
    X, _ = demo_data
    y = [labels[i % len(labels)] for i in range(len(X))]
    clf = make(tiny_gpt2).fit(X, y)
    assert clf.classes_.tolist() == classes
    assert clf.n_classes_ == len(classes)
    pred = clf.predict(X)
    assert set(pred.tolist()) <= set(classes)
    assert pred.dtype == clf.classes_.dtype
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(classes))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    # Column j of predict_proba is the probability of classes_[j].
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.module_.model.config.id2label == {i: str(c) for i, c in enumerate(classes)}


def test_score_is_accuracy(fitted, demo_data):
    X, y = demo_data
    expected = np.mean(fitted.predict(X) == np.asarray(y))
    assert fitted.score(X, y) == pytest.approx(expected)
    assert isinstance(fitted.score(X, y), float)


def test_caller_order_is_preserved(fitted, demo_data):
    X, _ = demo_data
    texts = [*X[:20], " ".join(X[20:30]), ""]
    permutation = np.random.default_rng(0).permutation(len(texts))
    proba = fitted.predict_proba(texts)
    shuffled = fitted.predict_proba([texts[i] for i in permutation])
    np.testing.assert_allclose(shuffled, proba[permutation], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(
        fitted.predict([texts[i] for i in permutation]), fitted.predict(texts)[permutation]
    )


# ---------------------------------------------------------------- scikit-learn contract
def test_get_set_params_and_clone(tiny_gpt2, make):
    clf = make(tiny_gpt2, max_length=64)
    params = clf.get_params()
    assert params["max_length"] == 64 and params["model_name_or_path"] == tiny_gpt2
    assert set(params) == set(inspect.signature(GPT2SequenceClassifier).parameters)
    assert clf.set_params(lr=0.1, batch_size=4) is clf
    assert (clf.lr, clf.batch_size) == (0.1, 4)
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == clf.get_params()
    assert "max_length=64" in repr(clf)


def test_clone_of_fitted_is_unfitted(fitted):
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        twin.predict(["text"])


def test_fitted_attributes_end_in_underscore(tiny_gpt2, demo_data, make):
    clf = make(tiny_gpt2)
    before = set(vars(clf))
    clf.fit(*demo_data)
    new = {name for name in set(vars(clf)) - before if not name.startswith("_")}
    assert new, "fit sets fitted attributes"
    assert all(name.endswith("_") for name in new), sorted(new)
    for name in ["classes_", "n_classes_", "module_", "tokenizer_", "runtime_", "history_"]:
        assert hasattr(clf, name)
    # __init__ stores its arguments and nothing else public.
    assert not {n for n in before if not n.startswith("_")} - set(clf.get_params())


def test_text_input_tags(tiny_gpt2, make):
    tags = make(tiny_gpt2).__sklearn_tags__()
    assert tags.input_tags.string is True
    assert tags.input_tags.two_d_array is False
    assert tags.estimator_type == "classifier"


def test_same_random_state_gives_identical_predictions(tiny_gpt2, demo_data, make):
    X, y = demo_data
    first = make(tiny_gpt2, random_state=3).fit(X, y).predict_proba(X)
    second = make(tiny_gpt2, random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    other = make(tiny_gpt2, random_state=4).fit(X, y).predict_proba(X)
    assert not np.array_equal(first, other)


def test_refit_starts_over(tiny_gpt2, demo_data, make):
    X, y = demo_data
    fresh = make(tiny_gpt2).fit(X[:40], y[:40]).predict_proba(X)
    clf = make(tiny_gpt2, max_epochs=2).fit(X, [len(t) % 3 for t in X])
    clf.set_params(max_epochs=1).fit(X[:40], y[:40])
    np.testing.assert_array_equal(clf.predict_proba(X), fresh)
    assert clf.classes_.tolist() == ["negative", "positive"]
    assert len(clf.history_) == 1


# ---------------------------------------------------------------- padding invariance
def test_padding_invariance_with_the_real_gpt2_tokenizer(real_tokenizer_gpt2, make):
    X = ["a fine film", "bad", "not good at all", "great", "dull and slow", "lovely"] * 4
    y = ["pos", "neg", "neg", "pos", "neg", "pos"] * 4
    clf = make(real_tokenizer_gpt2, max_length=100).fit(X, y)
    eos = "<|endoftext|>"
    assert clf.tokenizer_(f"great movie{eos}")["input_ids"][-1] == clf.tokenizer_.eos_token_id
    probe = ["great movie", f"great movie{eos}", "", "ok", eos]
    longer = [" ".join(["a much longer review that goes on and on"] * 8)] * 3
    alone = np.vstack([clf.predict_proba([text]) for text in probe])
    for batch_size in (1, 3, 32):
        clf.set_params(batch_size=batch_size)
        mixed = clf.predict_proba([longer[0], *probe, *longer[1:]])[1 : 1 + len(probe)]
        np.testing.assert_allclose(mixed, alone, atol=1e-5, rtol=0, err_msg=f"{batch_size=}")
    clf.set_params(max_length=20, batch_size=32)  # still longer than every probe text
    np.testing.assert_allclose(clf.predict_proba(probe + longer)[:5], alone, atol=1e-5, rtol=0)


def test_plain_left_padding_with_transformers_pooling_is_not_invariant(real_tokenizer_gpt2):
    """Why SequenceClassifierModule exists: the tutorial's recipe fails in two ways.

    1. GPT-2 numbers positions along the padded row, so left padding shifts a short text's
       positions by the amount of padding in its batch.
    2. transformers pools from the last token that is not the pad id; with EOS as pad, a text
       ending in a real EOS token is pooled from an earlier token.
    """
    tokenizer = AutoTokenizer.from_pretrained(real_tokenizer_gpt2)
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"
    model = AutoModelForSequenceClassification.from_pretrained(real_tokenizer_gpt2, num_labels=2)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    ours = SequenceClassifierModule(model, last_token_pooling=True).eval()
    short, long = "great movie", "a much longer review that goes on and on about the film"

    def logits(forward, texts):
        with torch.no_grad():
            batch = tokenizer(texts, return_tensors="pt", padding=True)
            out = forward(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.logits if hasattr(out, "logits") else out

    # 1. Plain left padding, no position ids: the short text's logits depend on its batch.
    plain_shift = (logits(model, [short]) - logits(model, [short, long])[0]).abs().max()
    ours_shift = (logits(ours, [short]) - logits(ours, [short, long])[0]).abs().max()
    assert plain_shift > 1e-3
    assert ours_shift < 1e-5

    # 2. A real EOS at the end: transformers pools an earlier token, ours pools the last one.
    with_eos = [short + tokenizer.eos_token]
    with torch.no_grad():
        ids = tokenizer(with_eos, return_tensors="pt")["input_ids"]
        last_hidden = model.transformer(input_ids=ids).last_hidden_state[:, -1]
        expected = model.score(last_hidden)
    assert (logits(model, with_eos) - expected).abs().max() > 1e-3
    torch.testing.assert_close(logits(ours, with_eos), expected, atol=1e-5, rtol=0)


def test_training_sees_texts_as_prediction_does(fitted, demo_data):
    """The training path (shuffled length-grouped batches, train-mode forward) computes the
    same logits per text as prediction, once dropout is switched off."""
    X, _ = demo_data
    texts = [*X[:12], " ".join(X[:5]), ""]
    expected = np.log(fitted.predict_proba(texts))
    # Label each text with its own index, so every training batch says which texts it holds.
    dataset = fitted._net.get_dataset(texts, np.arange(len(texts)))
    dropouts = [m for m in fitted.module_.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts, "the model has dropout layers to switch off"
    saved = [m.p for m in dropouts]
    seen = {}
    try:
        for module in dropouts:
            module.p = 0.0
        fitted.module_.train()
        for x, indices in fitted._net.get_iterator(dataset, training=True):
            with torch.no_grad():
                out = torch.log_softmax(fitted._net.infer(x).double(), dim=-1).numpy()
            seen.update(zip(indices.tolist(), out, strict=True))
    finally:
        for module, p in zip(dropouts, saved, strict=True):
            module.p = p
        fitted.module_.eval()
    assert sorted(seen) == list(range(len(texts)))
    logits = np.vstack([seen[i] for i in range(len(texts))])
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- validation split and callbacks
def test_validation_split_early_stopping_and_checkpoint(tiny_gpt2, demo_data, tmp_path, make):
    X, y = demo_data
    callbacks = [
        # A threshold no epoch can meet: stops deterministically after patience epochs.
        EarlyStopping(monitor="valid_loss", patience=1, threshold=10.0),
        Checkpoint(monitor="valid_loss_best", dirname=str(tmp_path), load_best=True),
    ]
    clf = make(tiny_gpt2, max_epochs=5, validation_fraction=0.25, callbacks=callbacks)
    clf.fit(X, y)
    assert len(clf.history_) < 5
    record = clf.history_[0]
    assert {"train_loss", "valid_loss", "train_acc", "valid_acc"} <= set(record)
    assert record["train_batch_count"] == 60 // 8 + 1  # 75% of 80 texts in batches of 8
    assert clf.device == "auto"  # loading the best checkpoint left the parameter alone
    best = torch.load(tmp_path / "params.pt", weights_only=True)
    for name, value in clf.module_.state_dict().items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0)


def test_no_validation_split_by_default(fitted):
    assert fitted.validation_fraction is None
    assert "valid_loss" not in fitted.history_[-1]
    assert fitted.history_[-1]["train_batch_count"] == 10  # all 80 texts, batches of 8


def test_partial_fit_continues_training_with_string_labels(tiny_gpt2, demo_data, make):
    X, y = demo_data
    clf = make(tiny_gpt2).fit(X, y)
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    assert clf.partial_fit(X[:16], y[:16]) is clf
    after = clf.module_.state_dict()
    assert any(not before[k].equal(after[k]) for k in before), "partial_fit changed no weight"
    assert len(clf.history_) == 2  # one epoch from fit, one more from partial_fit
    np.testing.assert_allclose(clf.predict_proba(X[:4]).sum(axis=1), 1.0)


def test_partial_fit_rejects_unknown_labels(tiny_gpt2, demo_data, make):
    X, y = demo_data
    clf = make(tiny_gpt2).fit(X, y)
    with pytest.raises(ValueError, match=r"not fitted with.*'neutral'"):
        clf.partial_fit(["meh"], ["neutral"])


def test_partial_fit_on_unfitted_estimator_fits_from_checkpoint(tiny_gpt2, demo_data, make):
    X, y = demo_data
    first = make(tiny_gpt2).partial_fit(X, y)
    second = make(tiny_gpt2).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_partial_fit_after_pickling_uses_a_fresh_optimizer(tiny_gpt2, demo_data, make):
    import pickle

    X, y = demo_data
    clf = pickle.loads(pickle.dumps(make(tiny_gpt2).fit(X, y)))
    clf.partial_fit(X[:16], y[:16])
    assert len(clf.history_) == 2
    assert set(clf.predict(X[:4])) <= set(clf.classes_)
