"""What the command line reads and checks before training: data, labels and output paths.

Every check that does not need a model runs here, before anything is trained, so that a wrong
column, a malformed file or an unwritable path costs seconds, not a training run.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ._csv_input import Table, read_table
from .persistence.atomic_file import check_writable_file

__all__ = ["DEMO_SAVE", "CliError", "Job", "prepare"]

DEMO_SAVE = Path(tempfile.gettempdir()) / "sklearn-gpt2-demo-model.joblib"


class CliError(Exception):
    """A problem with the command line's inputs, reported without a traceback."""


@dataclass(frozen=True)
class Job:
    """Everything read and checked before training starts.

    Attributes
    ----------
    demo : bool
        Neither ``--train`` nor ``--model`` was given: the demo model and settings are used.
    X : list of str
        The training texts.
    y : list of str
        The training labels, none empty.
    predict : Table or None
        The ``--predict`` file.
    save : pathlib.Path or None
        Where the model goes (the demo saves to the temporary directory by default).
    output : pathlib.Path or None
        Where the predictions go, when there is a ``--predict`` file.
    """

    demo: bool
    X: list[str]
    y: list[str]
    predict: Table | None
    save: Path | None
    output: Path | None


def _labels(table: Table, column: str) -> list[str]:
    labels = table.columns[column]
    for label, line in zip(labels, table.lines, strict=True):
        if label == "":
            raise CliError(
                f"{table.path}, line {line}: the label (column {column!r}) is empty. Fill it "
                f"in or remove the row."
            )
    return labels


def _check_paths(args: argparse.Namespace, save: Path | None, output: Path | None) -> None:
    inputs = {"--train": args.train, "--predict": args.predict}
    outputs = {"--save": save, "--output": output}
    for option, path in outputs.items():
        if path is None:
            continue
        check_writable_file(path, option)
        for other, source in inputs.items():
            if source is not None and path.resolve() == source.resolve():
                raise CliError(f"{option} {path} would overwrite the {other} file; choose "
                               f"another path.")  # fmt: skip
    if save is not None and output is not None and save.resolve() == output.resolve():
        raise CliError(f"--save and --output are the same file ({save}); choose two paths.")


def _check_output_columns(table: Table, classes: list[str], output: Path) -> None:
    added = ["prediction", *(f"proba_{label}" for label in classes)]
    clash = [name for name in added if name in table.columns]
    if clash:
        raise CliError(
            f"{table.path} already has a column {clash[0]!r}, which {output} gets from the "
            f"predictions; rename that column in {table.path.name}."
        )


def _check_folds(y: list[str], folds: int) -> None:
    # Stratified folds need every class in every fold; scikit-learn would only warn and then
    # train folds that never see the class.
    counts = Counter(y)
    label, count = min(counts.items(), key=lambda item: item[1])
    if count < folds:
        raise CliError(
            f"class {label!r} has {count} row{'s' * (count != 1)}, fewer than the {folds} "
            f"cross-validation folds; pass a smaller --cv (at least 2), --cv 0 to skip "
            f"cross-validation, or add rows of that class."
        )


def prepare(args: argparse.Namespace) -> Job:
    """Read and check every input and output path; nothing is trained yet.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    job : Job
        The data and the paths, checked.

    Raises
    ------
    CliError or ValueError
        Saying what is wrong and how to fix it.
    """
    demo = args.train is None and args.model is None
    if args.train is None:
        from .datasets import load_demo

        X, y = load_demo()
    else:
        required = [args.text_column, args.label_column]
        train = read_table(args.train, required, encoding=args.encoding,
                           text_column=args.text_column)  # fmt: skip
        X, y = train.columns[args.text_column], _labels(train, args.label_column)
    predict = None
    if args.predict is not None:
        predict = read_table(args.predict, [args.text_column], encoding=args.encoding,
                             text_column=args.text_column)  # fmt: skip
    if args.cv:
        _check_folds(y, args.cv)
    save = args.save if args.save is not None or not demo else DEMO_SAVE
    output = (args.output or Path("predictions.csv")) if predict is not None else None
    _check_paths(args, save, output)
    if predict is not None and output is not None:
        _check_output_columns(predict, sorted(set(y)), output)
    return Job(demo, X, y, predict, save, output)
