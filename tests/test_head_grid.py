"""One backbone pass per text for every ``max_length`` in head mode (decoders).

The spy wraps the real backbone call (``SequenceClassifierModule.features``, autospec so it
stays a method): every call still does its work, and the test counts the rows it ran.
"""

from __future__ import annotations

import pickle
from unittest import mock

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import sklearn_gpt2
from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.models.sequence import SequenceClassifierModule
from sklearn_gpt2.training import feature_pass


def make(checkpoint, **params):
    defaults = dict(tuning="head", batch_size=8, precision="float32", random_state=0)
    return GPT2SequenceClassifier(str(checkpoint), **{**defaults, **params})


@pytest.fixture
def backbone_spy():
    sklearn_gpt2.clear_checkpoint_cache()
    with mock.patch.object(
        SequenceClassifierModule,
        "features",
        autospec=True,
        side_effect=SequenceClassifierModule.features,
    ) as spy:
        yield spy
    sklearn_gpt2.clear_checkpoint_cache()


def rows_run(spy):
    return sum(call.args[1].shape[0] for call in spy.call_args_list)


@pytest.mark.parametrize("lengths", [[4, 8, 16], [16, 8, 4]])
def test_a_grid_over_three_max_lengths_reads_each_text_once(
    tiny_gpt2, demo_data, backbone_spy, lengths
):
    X, y = demo_data
    search = GridSearchCV(
        make(tiny_gpt2), {"max_length": lengths, "pooling": ["last", "mean"]}, cv=5
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    tokenizer = search.best_estimator_.tokenizer_
    longest = max(len(tokenizer(text)["input_ids"]) for text in X)
    assert longest > 16  # the texts are cut differently at each length
    # 6 candidates x 5 folds (train and score) + the refit, and one pass per text.
    assert rows_run(backbone_spy) == len(set(X))
    # The pass read whole texts (up to the reach of 128 tokens), not the first length's cut.
    widths = {call.args[1].shape[1] for call in backbone_spy.call_args_list}
    assert max(widths) == longest


def test_a_derived_feature_is_the_feature_of_the_cut_text(tiny_gpt2, demo_data, backbone_spy):
    X, y = demo_data
    for pooling in ("last", "mean", "weighted_mean"):
        make(tiny_gpt2, max_length=64, pooling=pooling).fit(X, y)  # reads the whole texts
        derived = make(tiny_gpt2, max_length=5, pooling=pooling).fit(X, y)
        calls = backbone_spy.call_count
        proba = derived.predict_proba(X)
        assert backbone_spy.call_count == calls  # from the states of the longer pass
        sklearn_gpt2.clear_checkpoint_cache()
        with mock.patch.object(feature_pass, "HORIZON_TOKENS", 1):  # a pass at 5 tokens
            direct = make(tiny_gpt2, max_length=5, pooling=pooling).fit(X, y)
            assert max(call.args[1].shape[1] for call in backbone_spy.call_args_list[-2:]) == 5
            # The same head on both (the solve would amplify float noise): same features.
            direct.module_.head.load_state_dict(derived.module_.head.state_dict())
            np.testing.assert_allclose(direct.predict_proba(X), proba, atol=1e-6, rtol=0)
        sklearn_gpt2.clear_checkpoint_cache()


def test_lengths_beyond_the_reach_read_again(tiny_gpt2, demo_data, backbone_spy):
    """The count above is meaningful: past the reach, a longer length needs a new pass."""
    X, y = demo_data
    with mock.patch.object(feature_pass, "HORIZON_TOKENS", 4):
        for length in (4, 8):
            make(tiny_gpt2, max_length=length).fit(X, y)
    assert rows_run(backbone_spy) > len(set(X))


def test_a_loaded_classifier_derives_into_a_cache_of_its_own(tiny_gpt2, demo_data, backbone_spy):
    X, y = demo_data
    clf = make(tiny_gpt2, max_length=16, pooling="mean").fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    calls = backbone_spy.call_count
    np.testing.assert_allclose(copy.predict_proba(X), clf.predict_proba(X), atol=1e-5, rtol=0)
    assert backbone_spy.call_count > calls  # the copy computed its own
