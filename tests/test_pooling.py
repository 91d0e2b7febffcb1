"""``pooling``: each option against a brute-force computation, padding, persistence, search.

The brute force runs each text alone, unpadded, through the bare transformers backbone and
pools its hidden states by hand; the classifier's probabilities must be the head applied to
that vector. Models are the real tiny GPT-2 of ``conftest.py`` and a tiny BERT built here.
"""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from transformers import AutoModel, BertConfig, BertModel, BertTokenizerFast

from sklearn_gpt2 import GPT2SequenceClassifier

POOLINGS = ["auto", "last", "mean", "weighted_mean"]
PROBE = ["a wonderful film", "dull and far too long", "", "it is bad <|endoftext|>", "é 😀 ok"]


def make(checkpoint, **params):
    defaults = dict(
        max_epochs=1, max_length=16, batch_size=3, lr=1e-3, precision="float32", random_state=0
    )
    return GPT2SequenceClassifier(str(checkpoint), **{**defaults, **params})


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, demo_data):
    directory = tmp_path_factory.mktemp("pooling-bert")
    words = sorted({word for text in demo_data[0] for word in text.split()})
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    tokenizer.save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    return directory


def by_hand(hidden: np.ndarray, pooling: str, decoder: bool) -> np.ndarray:
    """Pool the states ``(n, hidden)`` of one unpadded text, one token at a time."""
    n = len(hidden)
    if pooling == "last" or (pooling == "auto" and decoder):
        return hidden[n - 1]
    if pooling == "mean":
        return sum(hidden[i] for i in range(n)) / n
    weights = [(i + 1) / (n * (n + 1) / 2) for i in range(n)]
    return sum(weights[i] * hidden[i] for i in range(n))


def brute_force_proba(clf, backbone, texts, decoder):
    """Each text alone through ``backbone`` (unpadded, default positions), pooled by hand."""
    rows = []
    for text in texts:
        ids = clf.tokenizer_(text, truncation=True, max_length=clf.max_length)["input_ids"]
        ids = ids or [clf.tokenizer_.eos_token_id]  # GPT-2 reads an empty text as one EOS
        with torch.inference_mode():
            output = backbone(input_ids=torch.tensor([ids]))
        if clf.pooling == "auto" and not decoder:
            feature = output.pooler_output[0].numpy()
        else:
            feature = by_hand(output.last_hidden_state[0].double().numpy(), clf.pooling, decoder)
        with torch.inference_mode():
            logits = clf.module_.classify(torch.tensor(feature, dtype=torch.float32)[None])
        rows.append(torch.softmax(logits.double(), dim=-1)[0].numpy())
    return np.vstack(rows)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("tuning", ["head", "full", "lora"])
def test_gpt2_pooling_matches_brute_force(tiny_gpt2, demo_data, pooling, tuning):
    clf = make(tiny_gpt2, pooling=pooling, tuning=tuning).fit(*demo_data)
    # head mode: the pretrained backbone as transformers loads it; the other modes train
    # the backbone, so the fitted one (run bare, without this package's position handling).
    backbone = AutoModel.from_pretrained(tiny_gpt2) if tuning == "head" else clf.module_.model
    backbone = backbone.base_model.eval() if tuning != "head" else backbone.eval()
    expected = brute_force_proba(clf, backbone, PROBE, decoder=True)
    np.testing.assert_allclose(clf.predict_proba(PROBE), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["auto", "last", "mean"])
@pytest.mark.parametrize("tuning", ["head", "full"])
def test_encoder_pooling_matches_brute_force(tiny_bert, demo_data, pooling, tuning):
    clf = make(tiny_bert, pooling=pooling, tuning=tuning).fit(*demo_data)
    backbone = (
        AutoModel.from_pretrained(tiny_bert) if tuning == "head" else clf.module_.model.bert
    ).eval()
    texts = PROBE[:3]
    expected = brute_force_proba(clf, backbone, texts, decoder=False)
    np.testing.assert_allclose(clf.predict_proba(texts), expected, atol=1e-5, rtol=0)


def test_the_poolings_differ(tiny_gpt2, demo_data):
    """The options are not the same vector under different names."""
    probas = [make(tiny_gpt2, pooling=p, tuning="head").fit(*demo_data) for p in POOLINGS[1:]]
    values = [clf.predict_proba(PROBE[:2]) for clf in probas]
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert np.abs(values[i] - values[j]).max() > 1e-4


@pytest.mark.parametrize("pooling", ["mean", "weighted_mean", "last"])
@pytest.mark.parametrize("tuning", ["head", "full", "lora"])
def test_padding_invariance(tiny_gpt2, demo_data, pooling, tuning):
    clf = make(tiny_gpt2, pooling=pooling, tuning=tuning, batch_size=5).fit(*demo_data)
    batch = clf.predict_proba(PROBE)
    alone_clf = pickle.loads(pickle.dumps(clf))  # caches of its own: computed alone
    alone = np.vstack([alone_clf.predict_proba([text]) for text in PROBE])
    np.testing.assert_allclose(alone, batch, atol=1e-5, rtol=0)


def test_encoder_padding_invariance(tiny_bert, demo_data):
    clf = make(tiny_bert, pooling="mean", tuning="full", batch_size=5).fit(*demo_data)
    texts = [*PROBE[:2], demo_data[0][0]]
    batch = clf.predict_proba(texts)
    alone = np.vstack([clf.predict_proba([text]) for text in texts])
    np.testing.assert_allclose(alone, batch, atol=1e-5, rtol=0)


def test_weighted_mean_is_refused_for_encoders(tiny_bert, demo_data):
    with pytest.raises(ValueError, match=r"weighted_mean.*encoder.*pooling='mean'"):
        make(tiny_bert, pooling="weighted_mean").fit(*demo_data)


def test_pooling_is_validated(tiny_gpt2, demo_data):
    with pytest.raises(ValueError, match="The 'pooling' parameter of GPT2SequenceClassifier"):
        make(tiny_gpt2, pooling="max").fit(*demo_data)


@pytest.mark.parametrize("tuning", ["head", "lora", "full"])
def test_pooling_is_saved_and_loaded(tiny_gpt2, demo_data, tmp_path, tuning):
    clf = make(tiny_gpt2, pooling="weighted_mean", tuning=tuning).fit(*demo_data)
    expected = clf.predict_proba(PROBE)
    clf.save_pretrained(tmp_path / "clf")
    loaded = GPT2SequenceClassifier.from_pretrained(tmp_path / "clf")
    assert loaded.pooling == "weighted_mean" and loaded.module_.pooling == "weighted_mean"
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), expected)
    joblib.dump(clf, tmp_path / "clf.joblib")
    from_joblib = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(from_joblib.predict_proba(PROBE), expected)


def test_a_fitted_model_keeps_its_pooling_until_refit(tiny_gpt2, demo_data):
    clf = make(tiny_gpt2, pooling="mean", tuning="head").fit(*demo_data)
    proba = clf.predict_proba(PROBE)
    clf.set_params(pooling="last")
    np.testing.assert_array_equal(clf.predict_proba(PROBE), proba)
    assert clf.fit(*demo_data).module_.pooling == "last"


def test_pooling_in_a_grid_search(tiny_gpt2, demo_data):
    X, y = demo_data
    search = GridSearchCV(make(tiny_gpt2, tuning="head"), {"pooling": POOLINGS}, cv=2).fit(X, y)
    assert [p["pooling"] for p in search.cv_results_["params"]] == POOLINGS
    assert search.best_estimator_.module_.pooling == search.best_params_["pooling"]
