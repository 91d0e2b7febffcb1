"""The main job's command line, driven through ``main([...])`` with small CSV files."""

import csv
import os
import re
import runpy
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points, version
from pathlib import Path

import joblib
import numpy as np
import pytest

from sklearn_gpt2._cli import DEMO_DEFAULTS, build_parser, estimator_from, main

FAST = ["--epochs", "1", "--lr", "1e-3", "--batch-size", "16", "--precision", "float32"]
PACKAGE = Path(__file__).resolve().parents[1] / "sklearn_gpt2"


def write_csv(path, header, rows, encoding="utf-8"):
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def accuracy_lines(out):
    """The mean accuracies the command printed, by model name."""
    found = re.findall(
        r"^  (GPT2SequenceClassifier|TF-IDF \+ LogisticRegression) +([0-9.]+) ±", out, re.M
    )
    return {name: float(value) for name, value in found}


@pytest.fixture
def train_csv(tmp_path, demo_data):
    X, y = demo_data
    return write_csv(
        tmp_path / "train.csv", ["id", "review", "sentiment"], zip(range(80), X, y, strict=True)
    )


TRAIN = ["--text-column", "review", "--label-column", "sentiment"]


# ---------------------------------------------------------------- the demo
@pytest.mark.slow
def test_demo_learns_and_says_it_is_a_demo(tmp_path, capsys):
    # README command 1 exactly as a user runs it (only the save path moved into tmp_path):
    # the demo's own defaults, 5 folds, the tiny model from random weights.
    model = tmp_path / "demo.joblib"
    assert main(["--save", str(model)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "DEMO MODE" in out and "RANDOM" in out and "do not use it on real text" in out
    scores = accuracy_lines(out)
    assert "Cross-validated accuracy (5 stratified folds, the same for both models):" in out
    assert scores["GPT2SequenceClassifier"] >= 0.8  # chance is 0.5
    # Both are near the ceiling here; depending on the seed either may be one sentence ahead.
    assert scores["GPT2SequenceClassifier"] >= scores["TF-IDF + LogisticRegression"] - 0.05
    # What it learned carries over to sentences it never saw.
    assert re.search(r"'a wonderful, moving film' +-> positive", out)
    assert re.search(r"'dull and far too long' +-> negative", out)
    assert joblib.load(model).predict(["a dull and tedious story"])[0] == "negative"
    assert captured.err == ""  # not a terminal: no progress


def test_demo_settings_apply_to_the_demo_only(tiny_gpt2):
    args = build_parser().parse_args(["--epochs", "2"])
    demo = estimator_from(args, tiny_gpt2, demo=True).get_params()
    assert demo["max_epochs"] == 2  # the command line wins
    assert demo["lr"] == DEMO_DEFAULTS["lr"] and demo["batch_size"] == DEMO_DEFAULTS["batch_size"]
    own = estimator_from(args, tiny_gpt2, demo=False).get_params()
    assert own["lr"] == 2e-5 and own["batch_size"] == 32 and own["max_epochs"] == 2


# ---------------------------------------------------------------- your data
def test_train_cross_validate_save_and_predict(tmp_path, train_csv, tiny_gpt2, capsys):
    texts = ["a wonderful film", "", "boring, shallow and silly", 'quotes "and, commas"']
    predict_csv = write_csv(tmp_path / "new.csv", ["review", "note"], [(t, "n") for t in texts])
    output, model = tmp_path / "out" / "predictions.csv", tmp_path / "model.joblib"
    argv = ["--train", str(train_csv), *TRAIN, "--model", str(tiny_gpt2), "--cv", "3"]
    argv += ["--max-length", "32", *FAST]
    argv += ["--save", str(model), "--predict", str(predict_csv), "--output", str(output)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "DEMO" not in out
    assert "Cross-validated accuracy (3 stratified folds, the same for both models):" in out
    assert set(accuracy_lines(out)) == {"GPT2SequenceClassifier", "TF-IDF + LogisticRegression"}
    assert f"Saved the model to {model}" in out and model.is_file()
    assert captured.err == ""
    rows = read_csv(output)
    assert [row["review"] for row in rows] == texts  # caller order and input columns kept
    assert list(rows[0]) == ["review", "note", "prediction", "proba_negative", "proba_positive"]
    proba = np.array([[float(r["proba_negative"]), float(r["proba_positive"])] for r in rows])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert [r["prediction"] for r in rows] == [["negative", "positive"][i] for i in proba.argmax(1)]
    np.testing.assert_allclose(joblib.load(model).predict_proba(texts), proba, atol=2e-6)
    assert sorted(p.name for p in model.parent.iterdir() if p.name.startswith(".")) == []


def test_export_onnx_after_fitting(tmp_path, train_csv, tiny_gpt2, capsys):
    pytest.importorskip("onnxruntime")
    from sklearn_gpt2.onnx import OnnxTextClassifier

    model, exported = tmp_path / "model.joblib", tmp_path / "onnx"
    argv = ["--train", str(train_csv), *TRAIN, "--model", str(tiny_gpt2), "--cv", "0", *FAST]
    assert main([*argv, "--save", str(model), "--export-onnx", str(exported)]) == 0
    assert f"Exported the model as ONNX to {exported}" in capsys.readouterr().out
    texts = ["a wonderful film", "dull and far too long", ""]
    np.testing.assert_allclose(
        OnnxTextClassifier(exported).predict_proba(texts),
        joblib.load(model).predict_proba(texts),
        atol=1e-4,
    )


def test_training_options_reach_the_estimator(tiny_gpt2):
    argv = ["--tuning", "lora", "--lora-rank", "4", "--class-weight", "balanced"]
    args = build_parser().parse_args([*argv, "--validation-fraction", "0.2"])
    params = estimator_from(args, tiny_gpt2, demo=False).get_params()
    assert params["tuning"] == "lora" and params["lora_rank"] == 4
    assert params["class_weight"] == "balanced" and params["validation_fraction"] == 0.2
    # Not given: the estimator's defaults.
    default = estimator_from(build_parser().parse_args([]), tiny_gpt2, demo=False).get_params()
    assert default["tuning"] == "full" and default["validation_fraction"] is None


def test_predict_only_with_a_saved_model(tmp_path, train_csv, tiny_gpt2, capsys):
    model, directory = tmp_path / "model.joblib", tmp_path / "model-dir"
    argv = ["--train", str(train_csv), *TRAIN, "--model", str(tiny_gpt2), "--cv", "0", *FAST]
    argv += ["--tuning", "lora", "--class-weight", "balanced", "--validation-fraction", "0.25"]
    assert main([*argv, "--verbose", "--save", str(model), "--save-dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "valid_loss" in out  # the held-out fraction is scored every epoch
    assert f"Saved the model to {directory}" in out and (directory / "sklearn_gpt2.json").is_file()
    texts = ["a wonderful film", "dull and far too long", ""]
    new = write_csv(tmp_path / "new.csv", ["review"], [(t,) for t in texts])
    expected = joblib.load(model).predict_proba(texts)
    for saved in (model, directory):
        output = tmp_path / f"{saved.name}.csv"
        assert (
            main(["--load", str(saved), "--predict", str(new), *TRAIN, "--output", str(output)])
            == 0
        )
        out = capsys.readouterr().out
        assert f"Loaded GPT2SequenceClassifier from {saved}" in out
        assert "Training" not in out and "Fitted" not in out  # nothing is trained
        rows = read_csv(output)
        proba = [[float(r["proba_negative"]), float(r["proba_positive"])] for r in rows]
        np.testing.assert_allclose(proba, expected, atol=2e-6)


def test_predict_only_with_a_saved_prompt_classifier(tmp_path, tiny_gpt2, demo_data, capsys):
    from sklearn_gpt2 import GPT2PromptClassifier

    X, y = demo_data
    clf = GPT2PromptClassifier(tiny_gpt2, template="{text} It was", precision="float32")
    directory = clf.fit(X, y).save_pretrained(tmp_path / "prompt")
    texts = ["a wonderful film", "dull and far too long"]
    new = write_csv(tmp_path / "new.csv", ["text"], [(t,) for t in texts])
    output = tmp_path / "p.csv"
    assert main(["--load", str(directory), "--predict", str(new), "--output", str(output)]) == 0
    assert f"Loaded GPT2PromptClassifier from {directory}" in capsys.readouterr().out
    rows = read_csv(output)
    proba = [[float(r["proba_negative"]), float(r["proba_positive"])] for r in rows]
    np.testing.assert_allclose(proba, clf.predict_proba(texts), atol=2e-6)


def test_cv_zero_skips_cross_validation(train_csv, tiny_gpt2, capsys):
    assert (
        main(["--train", str(train_csv), *TRAIN, "--model", str(tiny_gpt2), "--cv", "0", *FAST])
        == 0
    )
    out = capsys.readouterr().out
    assert "Cross-validated" not in out and "Fitted on all 80 texts" in out


def test_encoding_option_reads_other_encodings(tmp_path, tiny_gpt2, capsys):
    rows = [("café crème, très bon", "positive"), ("déçu, ennuyeux", "negative")] * 4
    path = write_csv(tmp_path / "latin.csv", ["text", "label"], rows, encoding="cp1252")
    argv = ["--train", str(path), "--model", str(tiny_gpt2), "--cv", "0", *FAST]
    assert main(argv) == 1
    err = capsys.readouterr().err
    # character 5: the field is quoted (it holds a comma), so the "é" of "café" is the fifth.
    assert f"{path}, line 2, character 5: byte e9 is not valid utf-8" in err and "--encoding" in err
    output = tmp_path / "p.csv"
    argv += ["--encoding", "cp1252", "--predict", str(path), "--output", str(output)]
    assert main(argv) == 0
    assert [row["text"] for row in read_csv(output)] == [text for text, _ in rows]  # as UTF-8


def test_byte_order_mark_is_not_part_of_the_header(tmp_path, tiny_gpt2, capsys):
    path = write_csv(tmp_path / "bom.csv", ["text", "label"], [("good", "a"), ("bad", "b")] * 3,
                     encoding="utf-8-sig")  # fmt: skip
    assert main(["--train", str(path), "--model", str(tiny_gpt2), "--cv", "0", *FAST]) == 0
    assert "Fitted on all 6 texts" in capsys.readouterr().out


# ---------------------------------------------------------------- strict input, before training
MALFORMED = {
    "duplicate header": (
        "text,label,text\ngood,pos,x\n",
        "line 1: the header names column 'text' twice (columns 1 and 3). Rename one",
    ),
    "more fields than the header": (
        "text,label\ngood,pos\nbad, really bad,neg\n",
        "line 3: 3 fields, but the header has 2 (text, label). Put quotes around fields",
    ),
    "fewer fields than the header": (
        "text,label,id\ngood,pos,1\n\n\nbad,neg\n",
        "line 5: 2 fields, but the header has 3 (text, label, id)",
    ),
    "row after a multi-line text": (
        'text,label\n"two\nlines",pos\nbad\n',
        "line 4: 1 field, but the header has 2",
    ),
    "quote never closed": ('text,label\ngood,pos\n"bad,neg\nfine,pos\n', "line 3: unexpected end"),
    "text after a closing quote": ('text,label\n"good" text,pos\n', "line 2: ',' expected"),
    "missing text column": ("review,label\ngood,pos\n", "has no column 'text'; its columns are"),
    "empty text column": ("text,label\n,pos\n,neg\n", "column 'text' is empty in every row"),
    "empty label": ("text,label\ngood,pos\nbad,\n", "line 3: the label (column 'label') is empty"),
    "no rows": ("text,label\n", "has a header but no rows"),
    "empty file": ("", "is empty; it needs a header row"),
    "undecodable bytes": (b"text,label\ngood,pos\nna\xefve,neg\n", "line 3, character 3: byte ef"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_training_csv_is_refused_before_training(case, tmp_path, capsys):
    content, message = MALFORMED[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    # --model names no checkpoint: reaching the model at all would fail differently.
    assert main(["--train", str(path), "--model", "no-such-model", "--cv", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"sklearn-gpt2: error: {path}")
    assert message in captured.err and captured.err.count("\n") == 1, captured.err


def test_malformed_predict_csv_is_refused_before_training(train_csv, tmp_path, capsys):
    bad = tmp_path / "new.csv"
    bad.write_text("review,note\nfine,a\ntoo,many,fields\n", encoding="utf-8")
    argv = ["--train", str(train_csv), *TRAIN, "--predict", str(bad), "--model", "no-such-model"]
    assert main(argv) == 1
    assert f"{bad}, line 3: 3 fields, but the header has 2" in capsys.readouterr().err


def test_a_class_smaller_than_the_folds_is_refused_before_training(tmp_path, capsys):
    rows = [("good", "pos"), ("fine", "pos"), ("great", "pos"), ("bad", "neg"), ("awful", "neg")]
    path = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    assert main(["--train", str(path), "--model", "no-such-model", "--cv", "3"]) == 1
    assert (
        "class 'neg' has 2 rows, fewer than the 3 cross-validation folds" in capsys.readouterr().err
    )


def test_a_directory_is_not_a_csv_file(tmp_path, capsys):
    assert main(["--train", str(tmp_path), "--model", "no-such-model"]) == 1
    assert f"{tmp_path} is a directory, not a CSV file" in capsys.readouterr().err


def test_output_columns_must_not_clash_with_the_predictions(train_csv, tmp_path, capsys):
    new = write_csv(tmp_path / "new.csv", ["review", "proba_positive"], [("fine", "1")])
    argv = ["--train", str(train_csv), *TRAIN, "--predict", str(new), "--model", "no-such-model"]
    assert main(argv) == 1
    assert "already has a column 'proba_positive'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "make", "message"),
    [
        ("--save", lambda d: d, "is a directory; give a file name"),
        ("--output", lambda d: d, "is a directory; give a file name"),
        ("--save", lambda d: d / "a-file" / "model.joblib", "a-file is a file, not a directory"),
        ("--output", lambda d: d / "new.csv", "would overwrite the --predict file"),
        ("--save", lambda d: d / "train.csv", "would overwrite the --train file"),
    ],
)
def test_save_and_output_paths_are_checked_before_training(
    option, make, message, train_csv, tmp_path, capsys
):
    (tmp_path / "a-file").write_text("not a directory")
    new = write_csv(tmp_path / "new.csv", ["review"], [("fine",)])
    argv = ["--train", str(train_csv), *TRAIN, "--predict", str(new), "--model", "no-such-model"]
    assert main([*argv, option, str(make(tmp_path))]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_save_directory_is_refused(train_csv, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    argv = ["--train", str(train_csv), *TRAIN, "--model", "no-such-model"]
    assert main([*argv, "--save", str(locked / "m.joblib")]) == 1
    assert "cannot write in" in capsys.readouterr().err


@pytest.mark.slow
def test_disk_full_during_save_keeps_the_previous_model(train_csv, tiny_gpt2, tmp_path):
    model = tmp_path / "model.joblib"
    joblib.dump({"previous": "model"}, model)
    before = model.read_bytes()
    argv = ["--train", str(train_csv), *TRAIN, "--model", str(tiny_gpt2), "--cv", "0", *FAST]
    argv += ["--save", str(model)]
    script = f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        from sklearn_gpt2._cli import main
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        sys.exit(main({argv!r}))
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Fitted on all 80 texts" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sklearn-gpt2: error: could not save the model to {model}")
    assert "file size limit" in last and "the previous file" in last and "intact" in last
    assert "Traceback" not in result.stderr
    assert model.read_bytes() == before and joblib.load(model) == {"previous": "model"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------- Ctrl-C
def interrupt_after(batches):
    calls = []

    def on_batch_end(self, net, training=False, **kwargs):
        calls.append(1)
        if len(calls) == batches:
            raise KeyboardInterrupt

    return on_batch_end


@pytest.mark.parametrize("stage", ["cross-validation", "final fit"])
def test_interrupted_training_saves_nothing(
    stage, train_csv, tiny_gpt2, tmp_path, monkeypatch, capsys
):
    # The estimator keeps a half-trained model on Ctrl-C (and warns); the command must stop
    # instead of scoring or saving it.
    from skorch.callbacks import PrintLog

    from sklearn_gpt2._cli_progress import BatchProgress

    monkeypatch.setattr(
        BatchProgress if stage == "cross-validation" else PrintLog,
        "on_batch_end",
        interrupt_after(3),
    )
    model = tmp_path / "model.joblib"
    model.write_bytes(b"previous")
    argv = ["--train", str(train_csv), *TRAIN, "--model", str(tiny_gpt2), *FAST, "--epochs", "2"]
    argv += ["--cv", "2" if stage == "cross-validation" else "0", "--save", str(model)]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert captured.err == "sklearn-gpt2: interrupted; no file was left half-written.\n"
    assert "Cross-validated" not in captured.out and "Fitted" not in captured.out
    assert model.read_bytes() == b"previous"


# ---------------------------------------------------------------- progress
@pytest.fixture
def small_csv(tmp_path, demo_data):
    X, y = demo_data
    return write_csv(tmp_path / "small.csv", ["text", "label"], zip(X[:24], y[:24], strict=True))


def test_progress_is_shown_on_a_terminal(small_csv, tiny_gpt2, monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    argv = ["--train", str(small_csv), "--model", str(tiny_gpt2), "--cv", "2", *FAST]
    assert (
        main([*argv, "--predict", str(small_csv), "--output", str(small_csv.with_name("p.csv"))])
        == 0
    )
    captured = capsys.readouterr()
    assert "Cross-validation, fold 2/2" in captured.err  # the folds' bar
    assert "Predicting" in captured.err and "24/24" in captured.err  # the prediction bar
    assert re.search(r"epoch +train_acc +train_loss", captured.out)  # the final fit's epochs


@pytest.mark.parametrize(
    ("tty", "flag", "shown"),
    [(True, "--quiet", False), (False, None, False), (False, "--verbose", True)],
)
def test_quiet_and_verbose(tty, flag, shown, small_csv, tiny_gpt2, monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    argv = ["--train", str(small_csv), "--model", str(tiny_gpt2), "--cv", "2", *FAST]
    assert main([*argv, *([flag] if flag else [])]) == 0
    captured = capsys.readouterr()
    assert ("Cross-validation, fold" in captured.err) is shown
    assert ("train_loss" in captured.out) is shown
    assert "Cross-validated accuracy" in captured.out  # results are printed either way


# ---------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cv", "1"], "--cv must be 0"),
        (["--output", "x.csv"], "--output needs --predict"),
        (["--epochs", "many"], "--epochs: expected a whole number, got 'many'"),
        (["--quiet", "--verbose"], "not allowed with argument"),
        (["--encoding", "klingon"], "unknown encoding 'klingon'"),
        (["--text-column", "x", "--label-column", "x"], "name the same column"),
        (["--quantize", "int8"], "add --export-onnx DIR"),
        (["--export-onnx", "d", "--quantize", "int4"], "invalid choice: 'int4'"),
    ],
)
def test_bad_options_exit_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("sklearn-gpt2: error:")


def test_missing_file(tmp_path, capsys):
    assert main(["--train", str(tmp_path / "nope.csv"), "--model", "x"]) == 1
    assert "file not found" in capsys.readouterr().err


def test_checkpoint_not_found(train_csv, capsys):
    assert (
        main(["--train", str(train_csv), *TRAIN, "--model", "/no/such/checkpoint", "--cv", "2"])
        == 1
    )
    err = capsys.readouterr().err
    assert "Could not load the checkpoint" in err and "local directory" in err


def test_module_and_console_script_entry_points(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["sklearn-gpt2", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("sklearn_gpt2", run_name="__main__")
    assert exit_info.value.code == 0
    assert f"sklearn-gpt2 {version('sklearn-gpt2')}" in capsys.readouterr().out
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("sklearn-gpt2") == "sklearn_gpt2._cli:main"


# ---------------------------------------------------------------- --help stays light
HEAVY = ("torch", "transformers", "skorch", "sklearn", "joblib", "numpy")


def run_python(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_cli_module_imports_nothing_heavy_for_help_and_version():
    # The package's __init__ (not this module's to change) imports the estimator; load the
    # command line's own modules under an empty package to see what *they* import.
    result = run_python(f"""
        import sys, types
        package = types.ModuleType("sklearn_gpt2")
        package.__path__ = [{str(PACKAGE)!r}]
        sys.modules["sklearn_gpt2"] = package
        from sklearn_gpt2 import _cli
        for argv in (["--help"], ["--version"]):
            try:
                _cli.main(argv)
            except SystemExit as exit:
                assert exit.code == 0, exit.code
        print(sorted(name for name in {HEAVY!r} if name in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert "usage: sklearn-gpt2" in result.stdout and "--encoding" in result.stdout
    assert result.stdout.strip().endswith("[]"), result.stdout


def test_help_does_not_import_torch():
    result = run_python("""
        import sys
        from sklearn_gpt2 import _cli
        _cli.build_parser()
        try:
            _cli.main(["--help"])
        except SystemExit:
            pass
        assert "torch" not in sys.modules and "transformers" not in sys.modules
    """)
    assert result.returncode == 0, result.stderr
