"""sklearn_gpt2.base.callbacks: the warmup/decay schedule and per-epoch accuracy."""

import pytest
from skorch.callbacks import Callback

from sklearn_gpt2.base.callbacks import LinearWarmupDecay


@pytest.mark.parametrize("validation_fraction", [None, 0.25])
def test_schedule_warms_up_then_decays_to_zero_over_all_steps(
    make_classifier, tiny_gpt2, demo_data, validation_fraction
):
    X, y = demo_data
    clf = make_classifier(
        tiny_gpt2,
        max_epochs=2,
        batch_size=8,
        warmup_ratio=0.25,
        validation_fraction=validation_fraction,
    )
    lrs = []
    clf.set_params(callbacks=[("record", _RecordLr(lrs))]).fit(X, y)
    n_train = len(X) if validation_fraction is None else len(X) - int(len(X) * 0.25)
    steps = 2 * -(-n_train // 8)
    assert len(lrs) == steps
    peak = lrs.index(max(lrs))
    assert lrs[0] < lrs[peak] == pytest.approx(clf.lr, rel=0.2)
    assert lrs[:peak] == sorted(lrs[:peak]) and lrs[peak:] == sorted(lrs[peak:], reverse=True)
    assert isinstance(dict(clf._net.callbacks_)["lr_schedule"], LinearWarmupDecay)


def test_accuracy_is_recorded_per_epoch(make_classifier, tiny_gpt2, demo_data):
    clf = make_classifier(tiny_gpt2, max_epochs=2, validation_fraction=0.25).fit(*demo_data)
    n_valid = int(len(demo_data[0]) * 0.25)
    n_train = len(demo_data[0]) - n_valid
    for row in clf.history_:
        # Accuracies over the texts of each split: a whole number of texts right.
        for key, n in (("train_acc", n_train), ("valid_acc", n_valid)):
            assert row[key] * n == pytest.approx(round(row[key] * n), abs=1e-6), (key, row[key])


class _RecordLr(Callback):
    """Records the learning rate each training step used."""

    def __init__(self, lrs):
        self.lrs = lrs

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.lrs.append(net.optimizer_.param_groups[0]["lr"])
