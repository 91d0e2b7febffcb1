"""A fitted estimator's public surface reads like a scikit-learn estimator's, and all of it works.

The skorch net an estimator owns is private (``_net``); what a user sees is the parameters,
the fitted attributes and the methods of a classifier, each documented and working on raw text.
skorch's documented steps are extended, not replaced: a net mixing in skorch's
``AccelerateMixin`` trains through accelerate's backward pass.
"""

from __future__ import annotations

import inspect
from unittest import mock

import numpy as np
import pytest
from sklearn.metrics import f1_score
from skorch.callbacks import Callback, EpochScoring

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier
from sklearn_gpt2.base.net import TextNet

TEXTS = ["a wonderful film", "dull and tedious", "superb acting", "a boring plot"] * 4
LABELS = ["positive", "negative", "positive", "negative"] * 4
METHODS = {
    "fit",
    "partial_fit",
    "predict",
    "predict_proba",
    "predict_log_proba",
    "score",
    "save_pretrained",
    "from_pretrained",
    "get_params",
    "set_params",
    "get_metadata_routing",
    "set_fit_request",
    "set_partial_fit_request",
    "set_score_request",
}
FITTED = {"classes_", "n_classes_", "history_", "module_", "tokenizer_", "runtime_"}


@pytest.fixture(scope="module", params=["sequence", "prompt"])
def fitted(request, tiny_gpt2):
    if request.param == "sequence":
        clf = GPT2SequenceClassifier(tiny_gpt2, max_epochs=1, batch_size=8, random_state=0)
    else:
        clf = GPT2PromptClassifier(tiny_gpt2, max_epochs=1, batch_size=8, random_state=0)
    return clf.fit(TEXTS, LABELS)


def public_names(obj):
    return {name for name in dir(obj) if not name.startswith("_")}


def test_at_most_45_public_names_parameters_fitted_attributes_and_methods(fitted):
    names = public_names(fitted)
    assert len(names) <= 45, sorted(names)
    params = set(fitted.get_params(deep=False))
    extra = names - params - FITTED - METHODS
    own = {"export_onnx"} if isinstance(fitted, GPT2SequenceClassifier) else set()
    own |= (
        {"label_token_ids_", "prompt_template_"}
        if isinstance(fitted, GPT2PromptClassifier)
        else set()
    )
    assert extra == own, sorted(extra)
    assert names >= FITTED | METHODS
    # skorch's machinery is not part of it.
    for hidden in ("infer", "initialize", "train_step", "get_dataset", "optimizer_", "history"):
        assert hidden not in names


def test_every_public_method_is_documented_and_works_on_raw_text(fitted, tmp_path):
    for name in public_names(fitted) - set(fitted.get_params(deep=False)):
        member = getattr(type(fitted), name, None)
        if callable(member) or isinstance(member, property):
            assert inspect.getdoc(member), name
    proba = fitted.predict_proba(TEXTS[:3])
    np.testing.assert_allclose(fitted.predict_log_proba(TEXTS[:3]), np.log(proba))
    assert fitted.predict(TEXTS[:3]).tolist() == fitted.classes_[proba.argmax(1)].tolist()
    assert fitted.score(TEXTS, LABELS) == np.mean(fitted.predict(TEXTS) == np.asarray(LABELS))
    assert fitted.n_classes_ == len(fitted.classes_) == proba.shape[1]
    assert len(fitted.history_) == 1 and "train_loss" in fitted.history_[-1]
    assert fitted.runtime_.precision in ("float32", "bfloat16")
    assert fitted.tokenizer_("a film")["input_ids"]
    loaded = type(fitted).from_pretrained(fitted.save_pretrained(tmp_path / "saved"))
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS[:3]), proba)
    routing = fitted.get_metadata_routing()
    assert routing is not None


def test_callbacks_receive_the_net_and_its_history(tiny_gpt2):
    seen = []

    class Record(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append((len(net.history), net.predict(TEXTS[:2]).tolist()))

    clf = GPT2SequenceClassifier(
        tiny_gpt2, max_epochs=2, batch_size=8, random_state=0, callbacks=[Record()]
    ).fit(TEXTS, LABELS)
    assert [epochs for epochs, _ in seen] == [1, 2]
    # The net predicts class indices (skorch's convention) of raw texts, in their order.
    indices = np.searchsorted(clf.classes_, clf.predict(TEXTS[:2]))
    assert seen[-1][1] == indices.tolist()


def test_skorch_epoch_scoring_with_a_sklearn_scorer(tiny_gpt2):
    clf = GPT2SequenceClassifier(
        tiny_gpt2,
        max_epochs=2,
        batch_size=8,
        random_state=0,
        validation_fraction=0.25,
        callbacks=[EpochScoring("f1_macro", name="valid_f1", lower_is_better=False)],
    ).fit(TEXTS, LABELS)
    scores = clf.history_[:, "valid_f1"]
    assert len(scores) == 2
    # The last score is the final model's F1 on the held-out texts, as sklearn computes it.
    dataset = clf._net.get_dataset(TEXTS, np.searchsorted(clf.classes_, LABELS))
    _, valid = clf._net.split_rows(dataset)
    held_out = dataset.text_index[valid]
    expected = f1_score(
        np.asarray(LABELS)[held_out], clf.predict([TEXTS[i] for i in held_out]), average="macro"
    )
    assert scores[-1] == pytest.approx(expected)


def test_an_accelerate_mixin_takes_over_backward_without_a_forked_loop(tiny_gpt2):
    accelerate = pytest.importorskip("accelerate")
    from skorch.hf import AccelerateMixin

    accelerator = accelerate.Accelerator(cpu=True)

    class AcceleratedNet(AccelerateMixin, TextNet):
        def __init__(self, owner):
            super().__init__(owner, accelerator=accelerator)

    class Accelerated(GPT2SequenceClassifier):
        _net_class = AcceleratedNet

    with mock.patch.object(accelerator, "backward", wraps=accelerator.backward) as backward:
        clf = Accelerated(tiny_gpt2, max_epochs=1, batch_size=8, random_state=0).fit(TEXTS, LABELS)
    assert backward.call_count == 2  # 16 texts in batches of 8: accelerate ran each backward
    assert clf.predict_proba(TEXTS[:2]).shape == (2, 2)
