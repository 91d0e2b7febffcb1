"""The main job as a command line: fit on a CSV, cross-validate, save, predict another CSV.

A thin layer over :class:`GPT2SequenceClassifier`: it reads and writes CSV files and passes the
options on; every decision about training belongs to the estimator. Run with neither
``--train`` nor ``--model`` it uses the built-in demo dataset and a tiny GPT-2 with random
weights built locally, so it works offline; it says so plainly.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score

from . import __version__
from ._classifier import GPT2SequenceClassifier
from .datasets import load_demo, make_demo_checkpoint
from .models.checkpoint import quiet_transformers as _quiet_transformers

DEMO_WARNING = (
    "DEMO MODE: no --train CSV and no --model were given, so this runs on the built-in demo "
    "dataset (80 short movie-review sentences) with a tiny GPT-2 whose weights are RANDOM, "
    "built locally. Its accuracy and predictions mean nothing. For real work pass "
    "--train data.csv --model gpt2 (a hub name) or --model path/to/checkpoint (a local "
    "directory)."
)

DEMO_TEXTS = ["a wonderful, moving film", "dull and far too long", ""]


class CliError(Exception):
    """A problem with the command line's inputs, reported without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m sklearn_gpt2``."""
    parser = argparse.ArgumentParser(
        prog="sklearn-gpt2",
        description="Fine-tune GPT-2 (or any sequence-classification checkpoint) on a CSV of "
        "texts and labels: report cross-validated accuracy, fit on all rows, save the model "
        "with joblib and predict another CSV. With neither --train nor --model, a demo with "
        "a random-weight model runs offline.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--train", type=Path, metavar="CSV", help="training texts and labels")
    data.add_argument("--text-column", default="text", metavar="NAME", help="default: text")
    data.add_argument("--label-column", default="label", metavar="NAME", help="default: label")
    data.add_argument("--predict", type=Path, metavar="CSV", help="texts to classify")
    data.add_argument(
        "--output", type=Path, metavar="CSV", help="predictions (default: predictions.csv)"
    )
    data.add_argument("--save", type=Path, metavar="PATH", help="save the fitted model (joblib)")
    model = parser.add_argument_group("model (defaults are the estimator's)")
    model.add_argument(
        "--model", metavar="NAME_OR_DIR", help="hub name (e.g. gpt2) or checkpoint directory"
    )
    model.add_argument(
        "--cv", type=int, default=5, metavar="K", help="stratified folds (default: 5; 0 skips)"
    )
    model.add_argument("--max-length", type=int, metavar="N", help="tokens kept per text")
    model.add_argument("--epochs", type=int, metavar="N", help="passes over the training data")
    model.add_argument("--lr", type=float, help="peak learning rate")
    model.add_argument("--batch-size", type=int, metavar="N", help="texts per batch")
    model.add_argument("--precision", choices=["auto", "float32", "bfloat16", "float16"])
    model.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    model.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    model.add_argument("--verbose", action="store_true", help="show training progress")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def read_csv(path: Path, columns: Sequence[str]) -> dict[str, list[str]]:
    """Read ``columns`` of a CSV file (UTF-8, with a header row) as lists of strings."""
    if not path.is_file():
        raise CliError(f"file not found: {path}")
    csv.field_size_limit(2**31 - 1)  # reviews can be longer than csv's 128 KiB default
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in columns if column not in header]
        if missing:
            raise CliError(
                f"{path} has no column {missing[0]!r}; its columns are {header}. Name the "
                f"right one with --text-column / --label-column."
            )
        rows = list(reader)
    if not rows:
        raise CliError(f"{path} has a header but no rows.")
    return {name: [row[name] for row in rows] for name in header}


def estimator_from(args: argparse.Namespace, model: str | Path) -> GPT2SequenceClassifier:
    """The estimator, with only the options given on the command line set."""
    options = {
        "max_length": args.max_length,
        "max_epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "device": args.device,
    }
    given = {name: value for name, value in options.items() if value is not None}
    return GPT2SequenceClassifier(model, random_state=args.random_state, **given)


def training_data(args: argparse.Namespace) -> tuple[list[str], list[Any]]:
    """Texts and labels from ``--train``, or the demo dataset."""
    if args.train is None:
        return load_demo()
    table = read_csv(args.train, [args.text_column, args.label_column])
    # An empty label cell is a missing label: the estimator reports its index.
    labels = [label if label != "" else None for label in table[args.label_column]]
    return table[args.text_column], labels


def cross_validate(clf: GPT2SequenceClassifier, X: list[str], y: list[Any], folds: int) -> None:
    """Print the mean and spread of accuracy over ``folds`` stratified folds."""
    cv = StratifiedKFold(folds, shuffle=True, random_state=clf.random_state)
    # error_score='raise': a failing fold shows its own error, not a summary of all folds.
    scores = cross_val_score(clf, X, y, cv=cv, error_score="raise")
    print(
        f"Cross-validated accuracy ({folds} stratified folds): {scores.mean():.3f} "
        f"± {scores.std():.3f}  (folds: {', '.join(f'{s:.3f}' for s in scores)})"
    )


def write_predictions(
    clf: GPT2SequenceClassifier, table: dict[str, list[str]], text_column: str, output: Path
) -> None:
    """Write ``table`` with the predicted label and one probability column per class."""
    proba = clf.predict_proba(table[text_column])
    columns = dict(table)
    columns["prediction"] = [str(label) for label in clf.classes_[proba.argmax(axis=1)]]
    for index, label in enumerate(clf.classes_):
        columns[f"proba_{label}"] = [f"{p:.6f}" for p in proba[:, index]]
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
    print(f"Wrote {len(proba)} predictions to {output}")


def show_demo_predictions(clf: GPT2SequenceClassifier) -> None:
    """Print the demo model's probabilities for a few texts."""
    proba = clf.predict_proba(DEMO_TEXTS)
    print("Demo predictions (random weights: they mean nothing):")
    for text, row in zip(DEMO_TEXTS, proba, strict=True):
        label = clf.classes_[int(np.argmax(row))]
        scores = ", ".join(f"{c}={p:.3f}" for c, p in zip(clf.classes_, row, strict=True))
        print(f"  {text!r:32} -> {label}  ({scores})")


def run(args: argparse.Namespace) -> None:
    """The main job: cross-validate, fit on all rows, save, predict."""
    demo = args.train is None and args.model is None
    if demo:
        print(DEMO_WARNING)
        with _quiet_transformers():
            model: str | Path = make_demo_checkpoint()
    else:
        model = args.model if args.model is not None else "gpt2"
        if args.train is None:
            print("No --train CSV given: training on the built-in demo dataset.")
    table = read_csv(args.predict, [args.text_column]) if args.predict else None
    X, y = training_data(args)
    clf = estimator_from(args, model)
    print(f"Training data: {len(X)} texts; model: {model}")
    if args.cv:
        cross_validate(clf, X, y, args.cv)
    clf.set_params(verbose=int(args.verbose)).fit(X, y)
    print(f"Fitted on all {len(X)} texts; classes: {', '.join(map(str, clf.classes_))}")
    save = args.save
    if save is None and demo:
        save = Path(tempfile.gettempdir()) / "sklearn-gpt2-demo-model.joblib"
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(clf, save)
        print(f"Saved the model to {save} (load it with joblib.load)")
    if table is not None:
        write_predictions(clf, table, args.text_column, args.output or Path("predictions.csv"))
    elif demo:
        show_demo_predictions(clf)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, default=None
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    status : int
        0 on success, 1 when the inputs are wrong (the message says why), 2 for bad options.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cv == 1 or args.cv < 0:
        parser.error("--cv must be 0 (no cross-validation) or at least 2 folds")
    if args.output is not None and args.predict is None:
        parser.error("--output needs --predict CSV (the texts to classify)")
    try:
        run(args)
    except (CliError, ValueError, TypeError, OSError) as error:
        print(f"sklearn-gpt2: error: {error}", file=sys.stderr)
        return 1
    return 0
