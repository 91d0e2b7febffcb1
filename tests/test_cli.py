"""The main job's command line, driven through ``main([...])`` with small CSV files."""

import csv
import runpy
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

from sklearn_gpt2._cli import main

FAST = ["--epochs", "1", "--lr", "1e-3", "--batch-size", "16", "--precision", "float32"]


def write_csv(path, header, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def train_csv(tmp_path, demo_data):
    X, y = demo_data
    return write_csv(
        tmp_path / "train.csv", ["id", "review", "sentiment"], zip(range(80), X, y, strict=True)
    )


def test_demo_runs_offline_and_says_it_is_a_demo(tmp_path, capsys):
    model = tmp_path / "demo.joblib"
    assert main(["--cv", "2", *FAST, "--save", str(model)]) == 0
    out = capsys.readouterr().out
    assert "DEMO MODE" in out and "RANDOM" in out and "mean nothing" in out
    assert "Cross-validated accuracy (2 stratified folds):" in out and "±" in out
    assert "Demo predictions" in out
    assert model.is_file() and model.stat().st_size > 0


def test_train_cross_validate_save_and_predict(tmp_path, train_csv, tiny_gpt2, capsys):
    texts = ["a wonderful film", "", "boring, shallow and silly", 'quotes "and, commas"']
    predict_csv = write_csv(tmp_path / "new.csv", ["review", "note"], [(t, "n") for t in texts])
    output, model = tmp_path / "out" / "predictions.csv", tmp_path / "model.joblib"
    argv = ["--train", str(train_csv), "--text-column", "review", "--label-column", "sentiment"]
    argv += ["--model", str(tiny_gpt2), "--cv", "3", "--max-length", "32", *FAST]
    argv += ["--save", str(model), "--predict", str(predict_csv), "--output", str(output)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "DEMO" not in out
    assert "Cross-validated accuracy (3 stratified folds):" in out
    assert f"Saved the model to {model}" in out and model.is_file()
    rows = read_csv(output)
    assert [row["review"] for row in rows] == texts  # caller order and input columns kept
    assert list(rows[0]) == ["review", "note", "prediction", "proba_negative", "proba_positive"]
    proba = np.array([[float(r["proba_negative"]), float(r["proba_positive"])] for r in rows])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert [r["prediction"] for r in rows] == [["negative", "positive"][i] for i in proba.argmax(1)]


def test_cv_zero_skips_cross_validation(train_csv, tiny_gpt2, capsys):
    argv = ["--train", str(train_csv), "--text-column", "review", "--label-column", "sentiment"]
    assert main([*argv, "--model", str(tiny_gpt2), "--cv", "0", *FAST]) == 0
    out = capsys.readouterr().out
    assert "Cross-validated" not in out and "Fitted on all 80 texts" in out


def test_missing_column_is_named(train_csv, tiny_gpt2, capsys):
    assert main(["--train", str(train_csv), "--model", str(tiny_gpt2)]) == 1
    err = capsys.readouterr().err
    assert "has no column 'text'" in err
    assert "['id', 'review', 'sentiment']" in err and "--text-column" in err


def test_missing_file(tmp_path, capsys):
    assert main(["--train", str(tmp_path / "nope.csv"), "--model", "x"]) == 1
    assert "file not found" in capsys.readouterr().err


def test_missing_predict_file_fails_before_training(train_csv, tmp_path, capsys):
    argv = ["--train", str(train_csv), "--predict", str(tmp_path / "nope.csv")]
    assert main([*argv, "--model", "x", "--text-column", "review"]) == 1
    captured = capsys.readouterr()
    assert "file not found" in captured.err and "Fitted" not in captured.out


def test_empty_label_cell_is_reported_as_missing(tmp_path, tiny_gpt2, capsys):
    rows = [("good", "pos"), ("bad", "neg"), ("fine", ""), ("awful", "neg")]
    path = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    assert main(["--train", str(path), "--model", str(tiny_gpt2), "--cv", "0", *FAST]) == 1
    assert "y[2] is a missing value" in capsys.readouterr().err


def test_checkpoint_not_found(train_csv, capsys):
    argv = ["--train", str(train_csv), "--text-column", "review", "--label-column", "sentiment"]
    assert main([*argv, "--model", "/no/such/checkpoint", "--cv", "2"]) == 1
    err = capsys.readouterr().err
    assert "Could not load the checkpoint" in err and "local directory" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cv", "1"], "--cv must be 0"),
        (["--output", "x.csv"], "--output needs --predict"),
        (["--epochs", "many"], "invalid int value"),
    ],
)
def test_bad_options_exit_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_module_and_console_script_entry_points(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["sklearn-gpt2", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("sklearn_gpt2", run_name="__main__")
    assert exit_info.value.code == 0
    assert "sklearn-gpt2 0.1.0" in capsys.readouterr().out
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("sklearn-gpt2") == "sklearn_gpt2._cli:main"
