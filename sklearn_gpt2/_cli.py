"""The main job as a command line: fit on a CSV, cross-validate, save, predict another CSV.

A thin layer over :class:`GPT2SequenceClassifier`: it reads and writes CSV files and passes the
options on; every decision about training belongs to the estimator. Run with neither
``--train`` nor ``--model`` it uses the built-in demo dataset and a tiny GPT-2 with random
initial weights built locally, so it works offline; it says so plainly.

Everything that can be checked before training is checked first (the CSV files, the labels,
the output and save paths), so a mistake costs seconds, not a training run. The estimator,
torch and transformers are imported only once there is work to do: ``--help`` and
``--version`` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ._cli_job import CliError, prepare
from ._csv_input import Table, check_encoding

DEMO_WARNING = (
    "DEMO MODE: no --train CSV and no --model were given, so this runs on the built-in demo "
    "dataset (80 short sentences written so that cue words recur) with a tiny GPT-2 (2 layers) "
    "that starts from RANDOM weights, built locally. It learns the demo's cue words, which "
    "shows the package working, but it knows nothing of language: do not use it on real text. "
    "For real work pass --train data.csv --model gpt2 (a hub name) or --model "
    "path/to/checkpoint (a local directory)."
)

DEMO_TEXTS = ["a wonderful, moving film", "dull and far too long", ""]

# What the demo trains with where the command line says nothing: the tiny random model needs
# a higher learning rate and more epochs than the estimator's defaults (chosen for fine-tuning
# pretrained GPT-2) to learn the demo data. 20 epochs of 8 batches take seconds per fold.
DEMO_DEFAULTS = {"max_epochs": 20, "lr": 1e-3, "batch_size": 8}


def _version() -> str:
    try:
        return version("sklearn-gpt2")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m sklearn_gpt2``."""
    parser = argparse.ArgumentParser(
        prog="sklearn-gpt2",
        description="Fine-tune GPT-2 (or any sequence-classification checkpoint) on a CSV of "
        "texts and labels: report cross-validated accuracy beside TF-IDF + logistic "
        "regression's, fit on all rows, save the model with joblib and predict another CSV. "
        "With neither --train nor --model, a demo with a tiny random-weight model runs offline.",
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
    data.add_argument(
        "--encoding", default="utf-8", metavar="NAME", help="of the input CSVs (default: utf-8)"
    )
    model = parser.add_argument_group(
        "model (defaults are the estimator's; the demo trains with --epochs 20 --lr 1e-3 "
        "--batch-size 8)"
    )
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
    shown = parser.add_argument_group("progress (shown by default when output is a terminal)")
    loudness = shown.add_mutually_exclusive_group()
    loudness.add_argument(
        "--verbose", action="store_true", help="show progress even when output is not a terminal"
    )
    loudness.add_argument("--quiet", action="store_true", help="never show progress")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    return parser


def estimator_from(args: argparse.Namespace, model: str | Path, demo: bool) -> Any:
    """The estimator, with only the options given on the command line (or the demo's) set."""
    from ._classifier import GPT2SequenceClassifier

    options = {
        "max_length": args.max_length,
        "max_epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "device": args.device,
    }
    given = {name: value for name, value in options.items() if value is not None}
    if demo:
        given = {**DEMO_DEFAULTS, **given}
    return GPT2SequenceClassifier(model, random_state=args.random_state, **given)


def write_predictions(clf: Any, table: Table, text_column: str, output: Path, show: bool) -> None:
    """Write ``table`` with the predicted label and one probability column per class."""
    import csv
    import io

    from ._cli_progress import predict_proba_in_chunks
    from .persistence.atomic_file import atomic_write

    proba = predict_proba_in_chunks(clf, table.columns[text_column], show=show)
    columns = dict(table.columns)
    columns["prediction"] = [str(label) for label in clf.classes_[proba.argmax(axis=1)]]
    for index, label in enumerate(clf.classes_):
        columns[f"proba_{label}"] = [f"{p:.6f}" for p in proba[:, index]]

    def write(handle: Any) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
        text.flush()
        text.detach()  # leave the binary handle open for atomic_write to sync and close

    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, write, what="the predictions")
    print(f"Wrote {len(proba)} predictions to {output}")


def show_demo_predictions(clf: Any) -> None:
    """Print the demo model's probabilities for a few texts."""
    proba = clf.predict_proba(DEMO_TEXTS)
    print("Demo predictions (the demo model knows only the demo's cue words):")
    for text, row in zip(DEMO_TEXTS, proba, strict=True):
        label = clf.classes_[int(row.argmax())]
        scores = ", ".join(f"{c}={p:.3f}" for c, p in zip(clf.classes_, row, strict=True))
        print(f"  {text!r:32} -> {label}  ({scores})")


def run(args: argparse.Namespace) -> None:
    """The main job: check the inputs, cross-validate, fit on all rows, save, predict."""
    from ._cli_progress import wanted

    job = prepare(args)
    show = wanted(verbose=args.verbose, quiet=args.quiet)
    from .models.checkpoint import quiet_transformers as _quiet_transformers

    if job.demo:
        import torch

        from .datasets import make_demo_checkpoint

        # The demo model is tiny: a second thread costs more in synchronisation than it
        # computes, and much more on a machine whose cores are busy.
        torch.set_num_threads(1)
        print(DEMO_WARNING)
        with _quiet_transformers():
            model: str | Path = make_demo_checkpoint()
    else:
        model = args.model if args.model is not None else "gpt2"
        if args.train is None:
            print("No --train CSV given: training on the built-in demo dataset.")
    clf = estimator_from(args, model, job.demo)
    print(f"Training data: {len(job.X)} texts; model: {model}")
    if args.cv:
        from ._cli_evaluate import cross_validate, summary

        print(summary(cross_validate(clf, job.X, job.y, args.cv, show=show), args.cv))
    from ._cli_evaluate import fit_or_stop

    fit_or_stop(clf.set_params(verbose=int(show)), job.X, job.y)
    print(f"Fitted on all {len(job.X)} texts; classes: {', '.join(map(str, clf.classes_))}")
    if job.save is not None:
        from .persistence.atomic_file import atomic_joblib_dump

        job.save.parent.mkdir(parents=True, exist_ok=True)
        atomic_joblib_dump(clf, job.save)
        print(f"Saved the model to {job.save} (load it with joblib.load)")
    if job.predict is not None and job.output is not None:
        write_predictions(clf, job.predict, args.text_column, job.output, show)
    elif job.demo:
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
        0 on success, 1 when the inputs are wrong or a step fails (one line on standard error
        says why), 2 for bad options, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cv == 1 or args.cv < 0:
        parser.error("--cv must be 0 (no cross-validation) or at least 2 folds")
    if args.output is not None and args.predict is None:
        parser.error("--output needs --predict CSV (the texts to classify)")
    if args.text_column == args.label_column:
        parser.error("--text-column and --label-column name the same column")
    try:
        check_encoding(args.encoding)
    except ValueError as error:
        parser.error(f"--encoding: {error}")
    try:
        run(args)
    except KeyboardInterrupt:
        # Files are written whole or not at all, and none before training has finished: an
        # interrupted training leaves the previous model and predictions as they were.
        print("sklearn-gpt2: interrupted; no file was left half-written.", file=sys.stderr)
        return 130
    except (CliError, ValueError, TypeError, OSError, RuntimeError, MemoryError) as error:
        print(f"sklearn-gpt2: error: {error}", file=sys.stderr)
        return 1
    return 0
