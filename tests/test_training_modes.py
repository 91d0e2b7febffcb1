"""Training modes (``tuning="full"``, ``"head"``, ``"lora"``): what trains, batching, sklearn use.

The models are the real tiny GPT-2 of ``conftest.py`` (and, for the LoRA budget, a tiny GPT-2
with the real 50k-token GPT-2 vocabulary); nothing is mocked. The feature counter wraps the
real ``compute_features`` (``patch.object(..., wraps=...)``): every call still does its work.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import EarlyStopping

import sklearn_gpt2
from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.training import feature_pass

MODES = ["full", "head", "lora"]
LR = {"full": 1e-3, "head": 1e-2, "lora": 5e-3}
PROBE = ["a wonderful film", "dull and far too long", "", "it is bad <|endoftext|>", "é 😀"]


def make(checkpoint, tuning, **params):
    defaults = dict(
        tuning=tuning,
        lr=LR[tuning],
        max_epochs=2,
        max_length=16,
        batch_size=8,
        precision="float32",
        random_state=0,
    )
    return GPT2SequenceClassifier(str(checkpoint), **{**defaults, **params})


@pytest.fixture(scope="module", params=MODES)
def fitted(request, tiny_gpt2, demo_data):
    return make(tiny_gpt2, request.param).fit(*demo_data)


def trainable(clf):
    return {name for name, p in clf.module_.model.named_parameters() if p.requires_grad}


def test_tuning_and_lora_rank_are_validated(tiny_gpt2, demo_data):
    with pytest.raises(ValueError, match="The 'tuning' parameter of GPT2SequenceClassifier"):
        GPT2SequenceClassifier(tiny_gpt2, tuning="adapters").fit(*demo_data)
    with pytest.raises(ValueError, match="The 'lora_rank' parameter"):
        GPT2SequenceClassifier(tiny_gpt2, tuning="lora", lora_rank=0).fit(*demo_data)


def test_each_mode_learns_and_predicts(fitted, demo_data):
    X, _ = demo_data
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert set(fitted.predict(X)) <= set(fitted.classes_)
    if fitted.tuning == "head":  # one row: the solved head, better than chance
        assert len(fitted.history_) == 1 and fitted.history_[-1, "train_loss"] < np.log(2)
    else:
        assert fitted.history_[-1, "train_loss"] < fitted.history_[0, "train_loss"]


def test_padding_invariance_in_every_mode(fitted):
    batch = fitted.predict_proba(PROBE)
    # A copy predicts each text alone, with caches of its own (head mode: features computed
    # for one text, not read back from the batch above).
    copy = pickle.loads(pickle.dumps(fitted))
    alone = np.vstack([copy.predict_proba([text]) for text in PROBE])
    np.testing.assert_allclose(alone, batch, atol=1e-5, rtol=0)


def test_only_the_head_trains_in_head_mode(tiny_gpt2, demo_data):
    clf = make(tiny_gpt2, "head").fit(*demo_data)
    assert trainable(clf) == {"score.weight"}
    optimized = {id(p) for group in clf._net.optimizer_.param_groups for p in group["params"]}
    assert optimized == {id(clf.module_.model.score.weight)}
    backbone = [p for n, p in clf.module_.model.named_parameters() if not n.startswith("score")]
    assert all(p.grad is None for p in backbone)


def test_lora_trains_adapters_and_head_only(real_tokenizer_gpt2, demo_data):
    X, y = demo_data
    clf = make(real_tokenizer_gpt2, "lora", max_epochs=1).fit(X[:16], y[:16])
    names = trainable(clf)
    assert names and all("lora_" in n or n.startswith("score.") for n in names)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names if "lora_" in n}
    assert adapted == {"c_attn", "c_proj", "c_fc"}
    assert {n for n in names if n.startswith("score.")} == {"score.weight"}
    total = sum(p.numel() for p in clf.module_.parameters())
    n_trainable = sum(p.numel() for p in clf.module_.parameters() if p.requires_grad)
    assert n_trainable < 0.05 * total, (n_trainable, total)
    # No optimizer state for the frozen backbone, and no gradients.
    frozen = [p for p in clf.module_.parameters() if not p.requires_grad]
    assert all(p.grad is None and p not in clf._net.optimizer_.state for p in frozen)
    rank = clf.module_.model.transformer.h[0].attn.c_attn.lora_A["default"].weight.shape[0]
    assert rank == 8


def test_lora_rank_sets_the_adapters_rank(tiny_gpt2, demo_data):
    clf = make(tiny_gpt2, "lora", lora_rank=2, max_epochs=1).fit(*demo_data)
    assert clf.module_.model.transformer.h[1].mlp.c_fc.lora_B["default"].weight.shape[1] == 2


def test_modes_in_a_pipeline_and_a_grid_search(tiny_gpt2, demo_data):
    X, y = demo_data
    pipe = make_pipeline(
        FunctionTransformer(lambda texts: [t.lower() for t in texts]),
        make(tiny_gpt2, "head", max_epochs=1),
    )
    search = GridSearchCV(
        pipe,
        {
            "gpt2sequenceclassifier__tuning": ["head", "lora"],
            "gpt2sequenceclassifier__lr": [1e-3, 1e-2],
        },
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    # Each fold's score is an accuracy on its half of the texts: a whole number of them.
    for split in range(2):
        counts = search.cv_results_[f"split{split}_test_score"] * len(X) / 2
        np.testing.assert_allclose(counts, np.round(counts), rtol=0, atol=1e-9)
    best = search.best_estimator_[-1]
    assert best.tuning == search.best_params_["gpt2sequenceclassifier__tuning"]
    assert clone(best).get_params()["tuning"] == best.tuning


def test_partial_fit_continues_in_the_fitted_mode(tiny_gpt2, demo_data):
    X, y = demo_data
    for tuning in ("head", "lora"):
        clf = make(tiny_gpt2, tuning, max_epochs=1).fit(X, y)
        before = trainable(clf)
        clf.partial_fit(X, y)
        assert len(clf.history_) == 2 and trainable(clf) == before
        clf.set_params(tuning="full")
        with pytest.raises(ValueError, match=r"fitted with tuning=.*call fit to start over"):
            clf.partial_fit(X, y)


def test_head_mode_with_validation_split_and_early_stopping(tiny_gpt2, demo_data):
    clf = make(
        tiny_gpt2,
        "head",
        max_epochs=30,
        validation_fraction=0.25,
        callbacks=[EarlyStopping(monitor="valid_loss", patience=2, threshold=1e9)],
    ).fit(*demo_data)
    # fit solves the head on the 75% it trains on and scores the held-out texts: one row.
    assert len(clf.history_) == 1
    assert np.isfinite(clf.history_[0, "valid_loss"]) and 0 <= clf.history_[0, "valid_acc"] <= 1
    # partial_fit trains the solved head further by epochs (skorch's loop, with callbacks).
    clf.set_params(callbacks=None, max_epochs=2).partial_fit(*demo_data)
    assert len(clf.history_) == 1 + 2
    assert all(np.isfinite(clf.history_[:, "valid_loss"]))


@pytest.fixture
def feature_spy():
    sklearn_gpt2.clear_checkpoint_cache()
    with mock.patch.object(
        feature_pass, "compute_features", wraps=feature_pass.compute_features
    ) as spy:
        yield spy
    sklearn_gpt2.clear_checkpoint_cache()


def test_grid_search_in_head_mode_computes_each_text_once(tiny_gpt2, demo_data, feature_spy):
    X, y = demo_data
    search = GridSearchCV(
        make(tiny_gpt2, "head", max_epochs=3),
        {"lr": [1e-3, 3e-3, 1e-2], "max_length": [8, 64]},
        cv=3,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) * 3 + 1 == 19  # fits, with the refit
    n_rows = sum(len(call.args[1]) for call in feature_spy.call_args_list)
    # Each text once, though it is trained on in 2 folds and scored in 1 for each of 3
    # learning rates and 2 max lengths, then used by the refit: a decoder's feature at
    # max_length 8 derives from the states of a longer pass.
    assert n_rows == len(set(X)), n_rows
    assert {call.kwargs.get("pooling") for call in feature_spy.call_args_list} == {"states"}
    # More epochs and partial_fit reuse the cached features: no computation at all.
    calls = feature_spy.call_count
    search.best_estimator_.partial_fit(X, y)
    search.best_estimator_.predict(X)
    assert feature_spy.call_count == calls


def test_the_counter_sees_a_new_checkpoint_load(tiny_gpt2, demo_data, feature_spy):
    """The count above is meaningful: without the shared cache, every fit computes again."""
    X, y = demo_data
    make(tiny_gpt2, "head", max_epochs=1).fit(X, y)
    sklearn_gpt2.clear_checkpoint_cache()
    make(tiny_gpt2, "head", max_epochs=1).fit(X, y)
    assert sum(len(call.args[1]) for call in feature_spy.call_args_list) == 2 * len(set(X))


def test_a_fitted_model_keeps_its_mode_until_refit(tiny_gpt2, demo_data, tmp_path):
    X, y = demo_data
    clf = make(tiny_gpt2, "lora", max_epochs=1).fit(X, y)
    proba = clf.predict_proba(PROBE)
    clf.set_params(tuning="head")
    np.testing.assert_array_equal(clf.predict_proba(PROBE), proba)
    with pytest.raises(ValueError, match="fitted with tuning='lora'"):
        clf.save_pretrained(tmp_path / "clf")
    clf.fit(X, y)
    assert trainable(clf) == {"score.weight"}


def test_training_modes_page_examples_run():
    page = Path(__file__).resolve().parents[1] / "docs" / "training_modes.md"
    if not page.is_file():
        pytest.skip(f"{page} is not part of this installation")
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 3
    namespace: dict = {}
    with sklearn.config_context():  # the page turns metadata routing on; undo it afterwards
        for block in blocks:
            exec(block, namespace)
    assert namespace["search"].best_params_["tuning"] in {"head", "lora"}
    assert namespace["pipe"][-1].class_weight is None


@pytest.mark.parametrize("tuning", ["head", "lora"])
def test_bfloat16_in_cheap_modes(tiny_gpt2, demo_data, tuning):
    X, y = demo_data
    clf = make(tiny_gpt2, tuning, precision="bfloat16", max_epochs=1).fit(X, y)
    assert clf.runtime_.precision == "bfloat16"
    proba = clf.predict_proba(PROBE)
    clf.set_params(precision="float32")
    # Features are cached per precision: float32 prediction computes its own, close to bf16's.
    np.testing.assert_allclose(clf.predict_proba(PROBE), proba, atol=0.05)


def test_head_mode_shares_the_pretrained_weights_instead_of_copying_them(tiny_gpt2, demo_data):
    from sklearn_gpt2.models.checkpoint import load_checkpoint

    template = load_checkpoint(tiny_gpt2).template("sequence-classification", 2).model
    before = {k: v.clone() for k, v in template.state_dict().items()}
    head = make(tiny_gpt2, "head").fit(*demo_data)
    full = make(tiny_gpt2, "full").fit(*demo_data)
    shared = template.transformer.wte.weight.data_ptr()
    assert head.module_.model.transformer.wte.weight.data_ptr() == shared
    assert full.module_.model.transformer.wte.weight.data_ptr() != shared
    head.partial_fit(*demo_data)  # trains the head further: the shared weights stay
    for name, value in template.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.requires_grad for p in template.parameters())  # the template is untouched
