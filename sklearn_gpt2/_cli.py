"""The main job as a command line: fit on a CSV, cross-validate, save, predict another CSV.

A thin layer over :class:`GPT2SequenceClassifier`: it reads and writes CSV files and passes the
options on; every decision about training belongs to the estimator. Run with neither
``--train`` nor ``--model`` it uses the built-in demo dataset and a tiny GPT-2 with random
initial weights built locally, so it works offline; it says so plainly. With ``--load`` it
only predicts, with a model saved earlier.

Everything that can be checked before training is checked first (the CSV files, the labels,
the output and save paths), so a mistake costs seconds, not a training run. The estimator,
torch and transformers are imported only once there is work to do: ``--help`` and
``--version`` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cli_errors import CliError, explain, one_line, step
from ._cli_job import Job, check_output_columns, prepare
from ._cli_options import build_parser, check_options
from ._csv_input import Table

__all__ = ["DEMO_DEFAULTS", "build_parser", "estimator_from", "main", "run"]

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


def estimator_from(args: argparse.Namespace, model: str | Path, demo: bool) -> Any:
    """The estimator, with only the options given on the command line (or the demo's) set."""
    from ._classifier import GPT2SequenceClassifier

    options = {
        "max_length": args.max_length,
        "max_epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "tuning": args.tuning,
        "lora_rank": args.lora_rank,
        "class_weight": args.class_weight,
        "validation_fraction": args.validation_fraction,
        "precision": args.precision,
        "device": args.device,
    }
    given = {name: value for name, value in options.items() if value is not None}
    if demo:
        given = {**DEMO_DEFAULTS, **given}
    seed = 0 if args.random_state is None else args.random_state
    return GPT2SequenceClassifier(model, random_state=seed, **given)


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


def predict_with_saved(job: Job, args: argparse.Namespace, show: bool) -> None:
    """Predict ``--predict`` with the model of ``--load``; nothing is trained or saved."""
    from ._cli_load import load_saved
    from .models.checkpoint import quiet_transformers

    if job.load is None or job.predict is None or job.output is None:
        raise CliError("--load needs --predict CSV (the texts to classify).")
    with step(f"loading the model from {job.load}"), quiet_transformers():
        clf = load_saved(job.load)
    classes = ", ".join(map(str, clf.classes_))
    print(f"Loaded {type(clf).__name__} from {job.load}; classes: {classes}")
    check_output_columns(job.predict, [str(label) for label in clf.classes_], job.output)
    with step(f"predicting {job.predict.path}", "No predictions file was written."):
        write_predictions(clf, job.predict, args.text_column, job.output, show)


def save(clf: Any, job: Job) -> None:
    """Write the fitted model where ``--save``, ``--export-onnx`` and ``--save-dir`` say."""
    if job.save is not None:
        from .persistence.atomic_file import atomic_joblib_dump

        kept = f"An earlier file at {job.save}, if any, is intact."
        with step(f"saving the model to {job.save}", kept):
            job.save.parent.mkdir(parents=True, exist_ok=True)
            atomic_joblib_dump(clf, job.save)
        print(f"Saved the model to {job.save} (load it with joblib.load, or --load)")
    if job.export_onnx is not None:
        from .export.onnx import export_after_fit

        kept = f"An earlier export in {job.export_onnx}, if any, is intact."
        with step(f"exporting the model as ONNX to {job.export_onnx}", kept):
            export_after_fit(clf, job.export_onnx, job.quantize)
        kind = "int8 " if job.quantize else ""
        print(
            f"Exported the model as {kind}ONNX to {job.export_onnx} (predict with "
            f"sklearn_gpt2.onnx.OnnxTextClassifier, or serve it with python -m sklearn_gpt2.serve)"
        )
    if job.save_dir is not None:
        kept = f"An earlier save in {job.save_dir}, if any, is intact."
        with step(f"saving the model to {job.save_dir}", kept):
            clf.save_pretrained(job.save_dir)
        print(
            f"Saved the model to {job.save_dir} (load it with "
            f"{type(clf).__name__}.from_pretrained, or --load)"
        )


def run(args: argparse.Namespace) -> None:
    """The main job: check the inputs, cross-validate, fit on all rows, save, predict."""
    from ._cli_progress import wanted

    job = prepare(args)
    show = wanted(verbose=args.verbose, quiet=args.quiet)
    if job.load is not None:
        predict_with_saved(job, args, show)
        return
    from .models.checkpoint import quiet_transformers as _quiet_transformers

    if job.demo:
        import torch

        from .datasets import make_demo_checkpoint

        # The demo model is tiny: a second thread costs more in synchronisation than it
        # computes, and much more on a machine whose cores are busy.
        torch.set_num_threads(1)
        print(DEMO_WARNING)
        with step("building the demo checkpoint"), _quiet_transformers():
            model: str | Path = make_demo_checkpoint()
    else:
        model = args.model if args.model is not None else "gpt2"
        if args.train is None:
            print("No --train CSV given: training on the built-in demo dataset.")
    clf = estimator_from(args, model, job.demo)
    print(f"Training data: {len(job.X)} texts; model: {model}")
    folds = 5 if args.cv is None else args.cv
    if folds:
        from ._cli_evaluate import cross_validate, summary

        with step("cross-validation", "Nothing was saved."):
            scores = cross_validate(clf, job.X, job.y, folds, show=show)
        print(summary(scores, folds))
    from ._cli_evaluate import fit_or_stop

    with step("training on all texts", "Nothing was saved."):
        fit_or_stop(clf.set_params(verbose=int(show)), job.X, job.y)
    print(f"Fitted on all {len(job.X)} texts; classes: {', '.join(map(str, clf.classes_))}")
    save(clf, job)
    if job.predict is not None and job.output is not None:
        with step(f"predicting {job.predict.path}", "No predictions file was written."):
            write_predictions(clf, job.predict, args.text_column, job.output, show)
    elif job.demo:
        with step("predicting the demo's sentences"):
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
    check_options(parser, args)
    try:
        run(args)
    except KeyboardInterrupt:
        # Files are written whole or not at all, and none before training has finished: an
        # interrupted training leaves the previous model and predictions as they were.
        print("sklearn-gpt2: interrupted; no file was left half-written.", file=sys.stderr)
        return 130
    except CliError as error:
        print(f"sklearn-gpt2: error: {one_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:  # any other path: still one line, never a traceback
        print(f"sklearn-gpt2: error: {explain(error, 'the command')}", file=sys.stderr)
        return 1
    return 0
