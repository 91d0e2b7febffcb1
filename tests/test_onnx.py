"""ONNX export and the torch-free classifier: same probabilities, same tokens, tampering refused.

Every tuning mode of a tiny GPT-2 (and a tiny BERT-style encoder) is exported; the float32
export must give the torch estimator's float32 ``predict_proba`` within 1e-4, one text at a
time and in mixed-length batches, hostile texts included. The runtime tokenizes with the
``tokenizers`` library alone; its token ids must equal the estimator's.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'sklearn-gpt2[onnx]'")
pytest.importorskip(
    "onnxscript", reason="export needs onnxscript: pip install 'sklearn-gpt2[onnx]'"
)

from sklearn.exceptions import NotFittedError

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier
from sklearn_gpt2.export.onnx import export_onnx
from sklearn_gpt2.onnx import OnnxTextClassifier
from sklearn_gpt2.onnx.artifact import MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE
from sklearn_gpt2.onnx.tokenizer import JsonTokenizer
from sklearn_gpt2.text.spec import TokenizationSpec
from sklearn_gpt2.text.tokenize import tokenize

TOLERANCE = 1e-4
MAX_LENGTH = 24


def hostile_texts(demo_texts: list[str]) -> list[str]:
    """Texts that break exporters and tokenizers: empty, tiny, huge, special, emoji, surrogate."""
    return [
        "",
        "a",
        " ",
        "<|endoftext|>",
        "the film <|endoftext|> was fine <|endoftext|>",
        "🎬🍿 loved it 😍😍 👍🏽",
        "caf\u00e9 na\u00efve \u4e2d\u6587 \u0645\u0631\u062d\u0628\u0627",
        "broken \ud800 surrogate",
        "word " * 400,
        " ".join(demo_texts[:40]),
        "\n\t\r  spaces \u200b zero width",
    ]


@pytest.fixture(scope="module", params=["full", "lora", "head"])
def exported(request, tiny_gpt2, demo_data, make_classifier, tmp_path_factory):
    """A fitted classifier of each tuning mode and its float32 export."""
    lr = {"full": 1e-3, "lora": 1e-2, "head": 1e-2}[request.param]
    clf = make_classifier(tiny_gpt2, tuning=request.param, lr=lr, max_length=MAX_LENGTH)
    clf.fit(*demo_data)
    directory = clf.export_onnx(tmp_path_factory.mktemp(f"onnx-{request.param}") / "model")
    return clf, directory


def mixed_texts(demo_texts: list[str]) -> list[str]:
    return hostile_texts(demo_texts) + demo_texts[:30]


def test_float32_export_equals_torch_batched_and_alone(exported, demo_data):
    clf, directory = exported
    onnx_clf = OnnxTextClassifier(directory, batch_size=8)
    texts = mixed_texts(demo_data[0])
    expected = clf.predict_proba(texts)
    batched = onnx_clf.predict_proba(texts)
    np.testing.assert_allclose(batched, expected, atol=TOLERANCE, rtol=0)
    alone = np.vstack([onnx_clf.predict_proba([text]) for text in texts[:14]])
    np.testing.assert_allclose(alone, expected[:14], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(onnx_clf.predict(texts), clf.predict(texts))
    np.testing.assert_array_equal(onnx_clf.classes_, clf.classes_)
    assert onnx_clf.max_length == clf.max_length and onnx_clf.quantization is None


def test_probabilities_are_not_all_alike(exported, demo_data):
    # A fidelity check on a model that answers the same for every text would prove nothing.
    _clf, directory = exported
    proba = OnnxTextClassifier(directory).predict_proba(mixed_texts(demo_data[0]))
    assert np.ptp(proba[:, 0]) > 1e-3


def test_graph_outputs_probabilities_that_ignore_padding(exported):
    import onnxruntime as ort

    clf, directory = exported
    session = ort.InferenceSession(str(directory / MODEL_FILE), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["probabilities", "logits"]
    ids = tokenize(clf.tokenizer_, ["a wonderful film", "dull"], TokenizationSpec(MAX_LENGTH))
    pad = clf.tokenizer_.pad_token_id
    # "dull" padded on the left by 5 and 20 positions gives the same output as alone.
    outputs = []
    for extra in (0, 5, 20):
        row = np.concatenate([np.full(extra, pad), ids[1]]).astype(np.int64)[None]
        mask = np.concatenate([np.zeros(extra), np.ones(len(ids[1]))]).astype(np.int64)[None]
        proba, logits = session.run(None, {"input_ids": row, "attention_mask": mask})
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(proba, e / e.sum(axis=1, keepdims=True), atol=1e-6)
        outputs.append(proba)
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-6)
    np.testing.assert_allclose(outputs[2], outputs[0], atol=1e-6)


def test_export_leaves_the_estimator_as_it_was(exported, demo_data, tmp_path):
    clf, _ = exported
    texts = demo_data[0][:10]
    before = clf.predict_proba(texts)
    names = sorted(name for name, _ in clf.module_.named_modules())
    clf.export_onnx(tmp_path / "again")
    assert sorted(name for name, _ in clf.module_.named_modules()) == names
    np.testing.assert_array_equal(clf.predict_proba(texts), before)
    if clf.tuning == "lora":
        assert any("lora_" in name for name in names)


def test_manifest_records_the_text_handling(exported):
    clf, directory = exported
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert manifest["classes"]["values"] == clf.classes_.tolist()
    assert manifest["max_length"] == MAX_LENGTH
    assert manifest["truncation_side"] == "right"
    assert manifest["padding_side"] == "left"
    assert manifest["tuning"] == clf.tuning
    assert set(manifest["files"]) == {MODEL_FILE, TOKENIZER_FILE}


# ---------------------------------------------------------------- tokenization without transformers
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("max_length", [1, 3, MAX_LENGTH, 512])
def test_token_ids_equal_the_estimators(exported, demo_data, side, max_length):
    clf, directory = exported
    spec = TokenizationSpec(max_length, truncation_side=side)
    runtime = JsonTokenizer.from_file(directory / TOKENIZER_FILE, clf.tokenizer_.eos_token_id)
    texts = hostile_texts(demo_data[0])
    expected = tokenize(clf.tokenizer_, texts, spec)
    got = tokenize(runtime, texts, spec)
    assert [ids.tolist() for ids in got] == [ids.tolist() for ids in expected]
    # The literal special token is the special token, as in the estimator.
    assert got[3].tolist() == [clf.tokenizer_.eos_token_id]


def test_real_gpt2_tokenizer_gives_the_same_ids(real_tokenizer_gpt2, demo_data, tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(real_tokenizer_gpt2)
    runtime = JsonTokenizer(
        Tokenizer.from_str(tokenizer.backend_tokenizer.to_str()), tokenizer.eos_token_id
    )
    texts = [*hostile_texts(demo_data[0]), "Hello world", " it's   spaced\n\nout"]
    for spec in (TokenizationSpec(16), TokenizationSpec(1024, truncation_side="left")):
        expected = tokenize(tokenizer, texts, spec)
        assert [a.tolist() for a in tokenize(runtime, texts, spec)] == [
            b.tolist() for b in expected
        ]
    assert runtime("Hello world")["input_ids"] == [15496, 995]


# ---------------------------------------------------------------- the same errors as the estimator
@pytest.mark.parametrize(
    "bad",
    ["one string", ["ok", 3], ["ok", None], [], np.array([["a", "b"]]), 5, ["ok", b"bytes"]],
    ids=["str", "int-item", "none-item", "empty", "2d", "not-iterable", "bytes-item"],
)
def test_input_errors_are_the_estimators(exported, bad):
    clf, directory = exported
    onnx_clf = OnnxTextClassifier(directory)
    with pytest.raises(Exception) as expected:
        clf.predict_proba(bad)
    with pytest.raises(type(expected.value)) as got:
        onnx_clf.predict_proba(bad)
    assert str(got.value) == str(expected.value)


def test_log_proba_predict_and_score(exported, demo_data):
    _, directory = exported
    onnx_clf = OnnxTextClassifier(directory)
    X, y = demo_data
    proba = onnx_clf.predict_proba(X[:20])
    np.testing.assert_allclose(onnx_clf.predict_log_proba(X[:20]), np.log(proba))
    np.testing.assert_array_equal(onnx_clf.predict(X[:20]), onnx_clf.classes_[proba.argmax(1)])
    assert onnx_clf.score(X[:20], y[:20]) == np.mean(onnx_clf.predict(X[:20]) == np.array(y[:20]))


def test_pickled_copy_predicts_the_same_without_the_directory(exported, demo_data, tmp_path):
    import shutil

    _, directory = exported
    copy_dir = shutil.copytree(directory, tmp_path / "copy")
    onnx_clf = OnnxTextClassifier(copy_dir)
    blob = pickle.dumps(onnx_clf)
    shutil.rmtree(copy_dir)
    loaded = pickle.loads(blob)
    texts = demo_data[0][:12]
    np.testing.assert_array_equal(loaded.predict_proba(texts), onnx_clf.predict_proba(texts))


# ---------------------------------------------------------------- tampered and mismatched artifacts
@pytest.fixture
def copy_of(exported, tmp_path):
    import shutil

    return Path(shutil.copytree(exported[1], tmp_path / "export"))


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [MODEL_FILE, TOKENIZER_FILE])
def test_tampered_file_is_refused_by_name(copy_of, name):
    flip_last_byte(copy_of / name)
    with pytest.raises(ValueError, match=rf"{name} is corrupt, incomplete or was modified"):
        OnnxTextClassifier(copy_of)


@pytest.mark.parametrize("name", [MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE])
def test_missing_file_is_refused_by_name(copy_of, name):
    (copy_of / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        OnnxTextClassifier(copy_of)


def test_edited_manifest_is_refused(copy_of):
    manifest = json.loads((copy_of / MANIFEST_FILE).read_text())
    manifest["max_length"] = 7
    (copy_of / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=rf"{MANIFEST_FILE} was modified after saving"):
        OnnxTextClassifier(copy_of)


def test_model_of_another_export_is_refused(copy_of, tiny_gpt2, demo_data, make_classifier):
    X, y = demo_data
    labels = [f"{label}-{i % 3}" for i, label in enumerate(y)]
    other = make_classifier(tiny_gpt2, tuning="head").fit(X, labels)
    other_dir = other.export_onnx(copy_of.parent / "other")
    (copy_of / MODEL_FILE).write_bytes((other_dir / MODEL_FILE).read_bytes())
    with pytest.raises(ValueError, match=rf"{MODEL_FILE} is corrupt, incomplete or was modified"):
        OnnxTextClassifier(copy_of)


def test_pickling_refuses_a_file_changed_after_loading(copy_of):
    onnx_clf = OnnxTextClassifier(copy_of)
    flip_last_byte(copy_of / MODEL_FILE)
    with pytest.raises(ValueError, match=rf"{MODEL_FILE} changed since this classifier loaded"):
        pickle.dumps(onnx_clf)


def test_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        OnnxTextClassifier(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match=f"{MANIFEST_FILE} is missing"):
        OnnxTextClassifier(tmp_path)


# ---------------------------------------------------------------- what is not exported
def test_unfitted_and_bad_quantize_are_refused(tiny_gpt2, exported, tmp_path):
    with pytest.raises(NotFittedError):
        GPT2SequenceClassifier(tiny_gpt2).export_onnx(tmp_path / "x")
    with pytest.raises(ValueError, match="quantize must be None"):
        exported[0].export_onnx(tmp_path / "x", quantize="int4")
    assert not (tmp_path / "x").exists()


def test_prompt_classifier_is_not_exported_yet(tiny_lm, tmp_path):
    clf = GPT2PromptClassifier(
        tiny_lm,
        template="{text} it was",
        label_words={"positive": "good", "negative": "bad"},
        max_length=64,
        precision="float32",
    ).fit(["a fine film", "a dull film"], ["positive", "negative"])
    with pytest.raises(NotImplementedError, match="cannot be exported to ONNX yet"):
        export_onnx(clf, tmp_path / "prompt")


# ---------------------------------------------------------------- int8
def test_int8_export_is_smaller_and_agrees(exported, demo_data, tmp_path):
    clf, directory = exported
    int8_dir = clf.export_onnx(tmp_path / "int8", quantize="int8")
    int8 = OnnxTextClassifier(int8_dir)
    assert int8.quantization == "int8"
    assert (int8_dir / MODEL_FILE).stat().st_size < 0.8 * (directory / MODEL_FILE).stat().st_size
    X = demo_data[0]
    difference = np.abs(int8.predict_proba(X) - clf.predict_proba(X))
    # int8 rounding moves probabilities a little (most where a head is confident and its
    # weights large, as a solved head's are); labels seldom change.
    assert difference.mean() < 0.02 and difference.max() < 0.1, difference.max()
    assert np.mean(int8.predict(X) == clf.predict(X)) >= 0.9


# ---------------------------------------------------------------- an encoder (right padding)
@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory, demo_data) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert-onnx")
    words = sorted({word for text in demo_data[0] for word in text.lower().split()} | set(",.!?"))
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


@pytest.mark.parametrize("tuning", ["full", "lora"])
def test_encoder_export_equals_torch(tiny_encoder, demo_data, make_classifier, tuning, tmp_path):
    import torch

    clf = make_classifier(tiny_encoder, tuning=tuning, max_length=MAX_LENGTH, lr=1e-2, max_epochs=3)
    clf.fit(*demo_data)
    # The tiny encoder learns little: a steeper head spreads the probabilities, so that the
    # comparison below compares different values, not 0.49 with 0.49.
    with torch.no_grad():
        clf.module_.head.weight.mul_(50.0)
    directory = clf.export_onnx(tmp_path / "bert")
    assert json.loads((directory / MANIFEST_FILE).read_text())["padding_side"] == "right"
    onnx_clf = OnnxTextClassifier(directory, batch_size=8)
    texts = mixed_texts(demo_data[0])
    expected = clf.predict_proba(texts)
    np.testing.assert_allclose(onnx_clf.predict_proba(texts), expected, atol=TOLERANCE, rtol=0)
    alone = np.vstack([onnx_clf.predict_proba([text]) for text in texts[:11]])
    np.testing.assert_allclose(alone, expected[:11], atol=TOLERANCE, rtol=0)
    assert np.ptp(expected[:, 0]) > 0.01


# ---------------------------------------------------------------- no torch at prediction
def test_import_and_predict_without_torch(exported, demo_data):
    _, directory = exported
    script = textwrap.dedent(
        f"""
        import sys

        class Refuse:
            # Make torch and transformers impossible to import, not merely unused.
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "skorch", "peft"):
                    raise ImportError(f"{{name}} must not be imported")
                return None

        sys.meta_path.insert(0, Refuse())
        from sklearn_gpt2.onnx import OnnxTextClassifier

        clf = OnnxTextClassifier({str(directory)!r})
        print(clf.predict({demo_data[0][:3]!r}).tolist())
        loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")]
        assert not loaded, loaded
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    labels = json.loads(result.stdout.strip().replace("'", '"'))
    assert len(labels) == 3 and set(labels) <= set(map(str, exported[0].classes_))


@pytest.mark.parametrize("truncation", ["tail", "head+tail", "window"])
def test_every_truncation_exports_with_the_estimators_rows(
    truncation, tiny_gpt2, demo_data, make_classifier, tmp_path
):
    clf = make_classifier(tiny_gpt2, truncation=truncation, max_length=12, window_stride=5)
    clf.fit(*demo_data)
    directory = clf.export_onnx(tmp_path / truncation)
    long_texts = [" ".join(demo_data[0][i : i + 4]) for i in range(0, 24, 3)]
    texts = [*long_texts, *hostile_texts(demo_data[0])]
    onnx_clf = OnnxTextClassifier(directory, batch_size=4)
    expected = clf.predict_proba(texts)
    np.testing.assert_allclose(onnx_clf.predict_proba(texts), expected, atol=TOLERANCE, rtol=0)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert manifest["truncation"] == truncation
    assert np.ptp(expected[: len(long_texts), 0]) > 1e-4  # the long texts are told apart
