"""Every error path of the real command line, run in a subprocess: one line, the fix, exit != 0.

Each case runs ``python -m sklearn_gpt2`` as a user would, so nothing (not an exception from
torch, safetensors or the tokenizer's writer, not a signal) is hidden by the test harness.
"""

from __future__ import annotations

import csv
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--cv", "0", "--epochs", "1", "--batch-size", "16", "--precision", "float32"]

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file size limits are POSIX")


def cli(argv, cwd, *, file_limit=None, timeout=300):
    """Run the command line; return (exit status, stdout, stderr)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_gpt2", *map(str, argv)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit if file_limit else None,
    )
    return result.returncode, result.stdout, result.stderr


def one_error_line(status, err, expected_status=1):
    assert status == expected_status, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sklearn-gpt2: error: "), err
    return lines[0]


def write_csv(path, rows, header=("text", "label")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_gpt2, demo_data):
    """A folder with training and prediction CSVs and a model saved in both formats."""
    folder = tmp_path_factory.mktemp("cli-errors")
    X, y = demo_data
    write_csv(folder / "train.csv", zip(X, y, strict=True))
    write_csv(folder / "new.csv", [("a wonderful film",), ("dull",)], header=("text",))
    status, _, err = cli(
        ["--train", "train.csv", "--model", tiny_gpt2, *FAST, "--save", "model.joblib",
         "--save-dir", "model-dir"],
        folder,
    )  # fmt: skip
    assert status == 0, err
    return folder


def test_non_finite_loss(work, tiny_gpt2):
    status, _, err = cli(["--train", "train.csv", "--model", tiny_gpt2, *FAST, "--lr", "1e6"],
                           work)  # fmt: skip
    line = one_error_line(status, err)
    assert "loss became" in line and "--lr" in line


def test_corrupt_weights_of_the_checkpoint(work, tiny_gpt2, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_gpt2, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    status, _, err = cli(["--train", "train.csv", "--model", broken, *FAST], work)
    line = one_error_line(status, err)
    assert "model.safetensors" in line and "corrupt" in line and "again" in line


@pytest.mark.parametrize("limit", [8 * 1024, 64 * 1024])
@pytest.mark.parametrize("option", ["--save", "--save-dir"])
def test_save_under_a_file_size_limit(work, tiny_gpt2, option, limit, tmp_path):
    target = tmp_path / ("m.joblib" if option == "--save" else "m")
    argv = ["--train", "train.csv", "--model", tiny_gpt2, *FAST, option, target]
    status, out, err = cli(argv, work, file_limit=limit)
    line = one_error_line(status, err)
    assert "Fitted on all 80 texts" in out
    assert "file size limit" in line and "ulimit -f" in line, line
    assert not target.exists()


def test_a_label_of_only_whitespace(work):
    path = write_csv(work / "spaces.csv", [("good", "pos"), ("bad", "neg"), ("ok", "  ")])
    status, out, err = cli(["--train", path, "--model", "no-such-model", *FAST], work)
    line = one_error_line(status, err)
    assert f"{path}, line 4" in line and "only whitespace" in line and "remove the row" in line
    assert out == ""


def test_one_row_class_and_two_folds_gives_advice_that_can_be_followed(work):
    path = write_csv(work / "one.csv", [("good", "pos"), ("fine", "pos"), ("bad", "neg")])
    status, _, err = cli(["--train", path, "--model", "no-such-model", "--cv", "2"], work)
    line = one_error_line(status, err)
    assert "class 'neg' has 1 row" in line
    assert "add 1 or more rows of class 'neg'" in line and "--cv 0" in line
    assert "smaller --cv" not in line and "--cv 1" not in line


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["--model", "model.joblib"], 1, "--load model.joblib --predict"),
        (["--load", "model.joblib", "--predict", "new.csv", "--epochs", "2"], 2,
         "trains nothing, so --epochs cannot be used"),
        (["--load", "model.joblib", "--train", "train.csv", "--predict", "new.csv"], 2,
         "--train cannot be used"),
        (["--load", "model.joblib"], 2, "--load needs --predict"),
        (["--load", "train.csv", "--predict", "new.csv"], 1, "is not a joblib file"),
        (["--load", "nothing-here", "--predict", "new.csv"], 1, "no such file or directory"),
        (["--load", "model.joblib", "--predict", "new.csv", "--output", "new.csv"], 1,
         "would overwrite the --predict file"),
        (["--tuning", "lora", "--lora-rank", "0"], 2, "--lora-rank: expected a whole number"),
        (["--lora-rank", "4"], 2, "add --tuning lora"),
        (["--tuning", "adapters"], 2, "invalid choice: 'adapters'"),
        (["--class-weight", "equal"], 2, "invalid choice: 'equal'"),
        (["--validation-fraction", "0"], 2, "a fraction between 0 and 1"),
        (["--validation-fraction", "1.5"], 2, "a fraction between 0 and 1"),
        (["--lr", "nan"], 2, "a positive finite number"),
        (["--epochs", "0"], 2, "a whole number of 1 or more"),
        (["--train", "train.csv", "--save-dir", "train.csv"], 1, "is a file; give a directory"),
        (["--train", "train.csv", "--save-dir", "."], 1, "holds the --train file"),
    ],
)  # fmt: skip
def test_option_errors(work, argv, status, message):
    code, out, err = cli(argv, work, timeout=120)
    line = one_error_line(code, err, expected_status=status)
    assert message in line, line
    assert out == ""


def test_save_dir_into_the_training_checkpoint_is_refused(work, tiny_gpt2, tmp_path):
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_gpt2, checkpoint)
    before = (checkpoint / "model.safetensors").read_bytes()
    argv = ["--train", "train.csv", "--model", checkpoint, *FAST, "--save-dir", checkpoint]
    line = one_error_line(*cli(argv, work)[::2])
    assert "is the --model checkpoint" in line
    assert (checkpoint / "model.safetensors").read_bytes() == before


def test_load_a_checkpoint_directory_points_to_model(work, tiny_gpt2):
    status, _, err = cli(["--load", tiny_gpt2, "--predict", "new.csv"], work)
    assert "pass it as --model with --train" in one_error_line(status, err)


def test_load_a_tampered_directory(work, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(work / "model-dir", copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    status, _, err = cli(["--load", copy, "--predict", "new.csv", "--output", tmp_path / "p.csv"],
                         work)  # fmt: skip
    assert "model.safetensors" in one_error_line(status, err)
    assert not (tmp_path / "p.csv").exists()


def test_a_checkpoint_that_is_not_there_offline(work):
    status, _, err = cli(["--train", "train.csv", "--model", "no-such/model", *FAST], work)
    line = one_error_line(status, err)
    assert "Could not load the checkpoint 'no-such/model'" in line and "local" in line


def test_an_unexpected_error_is_still_one_line(work, tiny_gpt2):
    # A device torch accepts but cannot train on: the failure comes from deep inside torch.
    status, _, err = cli(["--train", "train.csv", "--model", tiny_gpt2, *FAST, "--device", "meta"],
                         work)  # fmt: skip
    one_error_line(status, err)
