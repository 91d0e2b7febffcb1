"""The command line's options: the parser, one-line option errors, and checks across options.

Everything here runs before any file is read and imports nothing heavy, so ``--help`` and
``--version`` stay fast and a contradictory command line is refused at once (exit status 2).
"""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ._cli_errors import one_line
from ._csv_input import check_encoding

__all__ = ["TRAINING_OPTIONS", "OneLineParser", "build_parser", "check_options"]


def _version() -> str:
    try:
        return version("sklearn-gpt2")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


# Options that shape a training run; none of them means anything with --load.
TRAINING_OPTIONS = {
    "train": "--train", "model": "--model", "cv": "--cv", "max_length": "--max-length",
    "epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size", "tuning": "--tuning",
    "lora_rank": "--lora-rank", "class_weight": "--class-weight",
    "validation_fraction": "--validation-fraction", "precision": "--precision",
    "device": "--device", "random_state": "--random-state", "save": "--save",
    "save_dir": "--save-dir", "export_onnx": "--export-onnx", "quantize": "--quantize",
}  # fmt: skip


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on standard error (and exit status 2)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction between 0 and 1 (e.g. 0.1), got {text}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m sklearn_gpt2``."""
    parser = OneLineParser(
        prog="sklearn-gpt2",
        description="Fine-tune GPT-2 (or any sequence-classification checkpoint) on a CSV of "
        "texts and labels: report cross-validated accuracy beside TF-IDF + logistic "
        "regression's, fit on all rows, save the model and predict another CSV. With --load, "
        "predict with a saved model and train nothing. With neither --train nor --model, a "
        "demo with a tiny random-weight model runs offline.",
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
        "--save-dir",
        type=Path,
        metavar="DIR",
        help="save the fitted model as a directory (save_pretrained: no pickle, checksummed)",
    )
    data.add_argument(
        "--export-onnx",
        type=Path,
        metavar="DIR",
        help="after fitting, export the model as ONNX (with tokenizer.json and a checked "
        "manifest) for sklearn_gpt2.onnx.OnnxTextClassifier, which predicts without torch",
    )
    data.add_argument(
        "--quantize",
        choices=["int8"],
        help="with --export-onnx: quantise the linear layers to int8 (onnxruntime's "
        "dynamic quantisation; smaller and faster on a CPU)",
    )
    data.add_argument(
        "--load",
        type=Path,
        metavar="PATH",
        help="predict --predict CSV with a saved model (a --save file or a --save-dir "
        "directory); trains nothing",
    )
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
    model.add_argument("--cv", type=int, metavar="K", help="stratified folds (default: 5; 0 skips)")
    model.add_argument("--max-length", type=_positive_int, metavar="N", help="tokens per text")
    model.add_argument(
        "--epochs", type=_positive_int, metavar="N", help="passes over the training data"
    )
    model.add_argument("--lr", type=_positive_float, help="peak learning rate")
    model.add_argument("--batch-size", type=_positive_int, metavar="N", help="texts per batch")
    model.add_argument(
        "--tuning",
        choices=["full", "lora", "head"],
        help="what is trained: every weight (full, the default), LoRA adapters and the head "
        "(lora), or the head on frozen features (head)",
    )
    model.add_argument(
        "--lora-rank", type=_positive_int, metavar="N", help="rank of the adapters (default: 8)"
    )
    model.add_argument(
        "--class-weight", choices=["balanced"], help="weigh classes inversely to their size"
    )
    model.add_argument(
        "--validation-fraction",
        type=_fraction,
        metavar="F",
        help="hold out this fraction of the training texts and report valid_loss/valid_acc "
        "per epoch (default: none)",
    )
    model.add_argument("--precision", choices=["auto", "float32", "bfloat16", "float16"])
    model.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    model.add_argument("--random-state", type=int, metavar="N", help="seed (default: 0)")
    shown = parser.add_argument_group("progress (shown by default when output is a terminal)")
    loudness = shown.add_mutually_exclusive_group()
    loudness.add_argument(
        "--verbose", action="store_true", help="show progress even when output is not a terminal"
    )
    loudness.add_argument("--quiet", action="store_true", help="never show progress")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    return parser


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse contradictory options before anything is read (one line, exit status 2)."""
    if args.cv is not None and (args.cv == 1 or args.cv < 0):
        parser.error("--cv must be 0 (no cross-validation) or at least 2 folds")
    if args.output is not None and args.predict is None:
        parser.error("--output needs --predict CSV (the texts to classify)")
    if args.text_column == args.label_column:
        parser.error("--text-column and --label-column name the same column")
    if args.load is not None:
        given = [flag for name, flag in TRAINING_OPTIONS.items() if getattr(args, name) is not None]
        if given:
            parser.error(
                f"--load predicts with a saved model and trains nothing, so {', '.join(given)} "
                f"cannot be used with it; drop {'them' if len(given) > 1 else 'it'}, or drop "
                f"--load to train a new model"
            )
        if args.predict is None:
            parser.error(f"--load needs --predict CSV (the texts to classify with {args.load})")
    if args.quantize is not None and args.export_onnx is None:
        parser.error("--quantize sets how --export-onnx writes the model; add --export-onnx DIR")
    if args.lora_rank is not None and args.tuning != "lora":
        parser.error("--lora-rank sets the adapters of --tuning lora; add --tuning lora")
    try:
        check_encoding(args.encoding)
    except ValueError as error:
        parser.error(f"--encoding: {error}")
