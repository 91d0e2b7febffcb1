"""Faults during fit and predict: Ctrl-C, non-finite loss, out of memory, failing callbacks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

from sklearn_gpt2 import GPT2SequenceClassifier


class RaiseAt(Callback):
    """Raise ``error`` in ``event`` once ``n`` training batches have ended."""

    def __init__(self, error, n=0, event="on_batch_end"):
        self.error = error
        self.n = n
        self.event = event

    def initialize(self):
        self.seen_ = 0
        return self

    def _maybe_raise(self, event, training):
        if event == self.event and training and self.seen_ >= self.n:
            raise self.error

    def on_batch_begin(self, net, training=False, **kwargs):
        self._maybe_raise("on_batch_begin", training)

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.seen_ += 1
        self._maybe_raise("on_batch_end", training)


class StopAfterEpoch(Callback):
    """What skorch's EarlyStopping does: KeyboardInterrupt at the end of an epoch."""

    def on_epoch_end(self, net, **kwargs):
        raise KeyboardInterrupt


class PoisonWeights(Callback):
    """Set the head's weights to NaN after the first batch, as a diverging run would."""

    def on_batch_end(self, net, training=False, **kwargs):
        with torch.no_grad():
            net.module_.model.score.weight.fill_(float("nan"))


@pytest.fixture
def data(demo_data):
    return demo_data[0][:32], demo_data[1][:32]


def _clf(tiny_gpt2, **params):
    params = {"max_epochs": 2, "batch_size": 4, "precision": "float32", "random_state": 0, **params}
    return GPT2SequenceClassifier(str(tiny_gpt2), **params)


def _assert_unfitted(clf, texts):
    with pytest.raises(NotFittedError):
        clf.predict(texts[:2])
    assert not [name for name in vars(clf) if name.endswith("_") and not name.startswith("__")]


def test_ctrl_c_mid_epoch_keeps_the_weights_trained_so_far(tiny_gpt2, data):
    clf = _clf(tiny_gpt2, callbacks=[RaiseAt(KeyboardInterrupt, n=3)])
    with pytest.warns(UserWarning, match=r"interrupted .* epoch 1 of 2, after 3 trained batches"):
        assert clf.fit(*data) is clf
    assert clf.history_[-1]["interrupted"] is True
    assert len(clf.history_) == 1 and len(clf.history_[-1]["batches"]) == 3
    proba = clf.predict_proba(data[0])
    assert np.isfinite(proba).all()
    # The weights are those after 3 steps: more steps give a different model.
    longer = _clf(tiny_gpt2, callbacks=[RaiseAt(KeyboardInterrupt, n=5)])
    with pytest.warns(UserWarning, match="after 5 trained batches"):
        longer.fit(*data)
    assert not np.allclose(longer.predict_proba(data[0]), proba)


def test_ctrl_c_before_any_batch_leaves_the_estimator_unfitted(tiny_gpt2, data):
    clf = _clf(tiny_gpt2, callbacks=[RaiseAt(KeyboardInterrupt, n=0, event="on_batch_begin")])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(*data)
    _assert_unfitted(clf, data[0])


def test_stop_at_an_epoch_boundary_is_not_an_interruption(tiny_gpt2, data):
    clf = _clf(tiny_gpt2, max_epochs=3, callbacks=[StopAfterEpoch()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.fit(*data)
    assert len(clf.history_) == 1 and "interrupted" not in clf.history_[-1]
    clf.predict(data[0][:2])


def test_non_finite_loss_stops_with_advice(tiny_gpt2, data):
    clf = _clf(tiny_gpt2, callbacks=[PoisonWeights()])
    with pytest.raises(FloatingPointError, match=r"Lower the learning rate \(lr=") as error:
        clf.fit(*data)
    # The fit already runs in float32: the advice does not suggest it.
    assert "(precision='float32')" in str(error.value)
    assert "use precision='float32'" not in str(error.value)
    _assert_unfitted(clf, data[0])


def test_huge_learning_rate_stops_with_advice(tiny_gpt2, data):
    clf = _clf(tiny_gpt2, lr=1e30, max_grad_norm=None, max_epochs=3)
    with pytest.raises(FloatingPointError, match=r"lr=1e\+30"):
        clf.fit(*data)
    _assert_unfitted(clf, data[0])


def test_out_of_memory_in_fit_gives_advice_and_unfits(tiny_gpt2, data):
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    clf = _clf(tiny_gpt2, callbacks=[RaiseAt(oom, n=1, event="on_batch_begin")])
    with pytest.raises(torch.OutOfMemoryError, match=r"during fit .*smaller batch_size \(now 4\)"):
        clf.fit(*data)
    _assert_unfitted(clf, data[0])


def test_out_of_memory_in_predict_gives_advice(tiny_gpt2, data, monkeypatch):
    clf = _clf(tiny_gpt2, max_epochs=1).fit(*data)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(clf.module_, "forward", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError, match=r"during predict .*max_length"):
        clf.predict_proba(data[0])
    monkeypatch.undo()
    assert clf.predict(data[0]).shape == (32,)


def test_an_error_mid_fit_leaves_the_estimator_unfitted(tiny_gpt2, data):
    clf = _clf(tiny_gpt2, callbacks=[RaiseAt(RuntimeError("boom"), n=2)])
    with pytest.raises(RuntimeError, match="boom"):
        clf.fit(*data)
    _assert_unfitted(clf, data[0])


@pytest.mark.parametrize(
    "break_it",
    [
        lambda clf: clf.set_params(callbacks=[RaiseAt(RuntimeError("boom"), n=1)]),
        lambda clf: clf.set_params(lr=-1.0),
    ],
    ids=["error mid-fit", "invalid parameter"],
)
def test_a_failed_refit_does_not_keep_the_old_model(tiny_gpt2, data, break_it):
    clf = _clf(tiny_gpt2, max_epochs=1).fit(*data)
    break_it(clf)
    with pytest.raises((RuntimeError, ValueError)):
        clf.fit(*data)
    _assert_unfitted(clf, data[0])
