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

from ._cli_errors import CliError
from ._csv_input import Table, read_table
from .persistence.atomic_file import check_writable_file

__all__ = ["DEMO_SAVE", "CliError", "Job", "check_output_columns", "prepare"]

DEMO_SAVE = Path(tempfile.gettempdir()) / "sklearn-gpt2-demo-model.joblib"


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
    save_dir : pathlib.Path or None
        Where ``save_pretrained`` writes the model, if ``--save-dir`` was given.
    load : pathlib.Path or None
        The saved model to predict with (``--load``); then nothing is trained and ``X`` and
        ``y`` are empty.
    export_onnx : pathlib.Path or None
        Where the fitted model is exported as ONNX (``--export-onnx``).
    quantize : str or None
        How the export is quantised (``--quantize``).
    """

    demo: bool
    X: list[str]
    y: list[str]
    predict: Table | None
    save: Path | None
    output: Path | None
    save_dir: Path | None = None
    load: Path | None = None
    export_onnx: Path | None = None
    quantize: str | None = None


def _labels(table: Table, column: str) -> list[str]:
    labels = table.columns[column]
    for label, line in zip(labels, table.lines, strict=True):
        if label.strip() == "":
            what = "empty" if label == "" else f"only whitespace ({label!r})"
            raise CliError(
                f"{table.path}, line {line}: the label (column {column!r}) is {what}. Fill it "
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


def check_output_columns(table: Table, classes: list[str], output: Path) -> None:
    """Refuse a ``--predict`` table that already has a column the predictions add."""
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
    if count >= folds:
        return
    rows = f"{count} row{'s' * (count != 1)}"
    more = folds - count
    fixes = [f"add {more} or more rows of class {label!r}"]
    if count >= 2:
        fixes.append(f"pass --cv {count}")
    fixes += [f"remove the class's {rows}", "pass --cv 0 to skip cross-validation"]
    raise CliError(
        f"class {label!r} has {rows}, fewer than the {folds} cross-validation folds (every "
        f"fold needs a row of every class); {', '.join(fixes[:-1])}, or {fixes[-1]}."
    )


def _check_model(model: str | None) -> None:
    if model is not None and Path(model).is_file():
        raise CliError(
            f"--model {model} is a file; --model names a checkpoint to train from (a hub name "
            f"or a directory). To predict with a saved model, pass --load {model} --predict "
            f"new.csv."
        )


def _check_save_dir(save_dir: Path | None, args: argparse.Namespace) -> None:
    if save_dir is None:
        return
    if save_dir.exists() and not save_dir.is_dir():
        raise CliError(f"--save-dir {save_dir} is a file; give a directory (new or earlier).")
    if args.model is not None and save_dir.resolve() == Path(args.model).resolve():
        raise CliError(
            f"--save-dir {save_dir} is the --model checkpoint; saving there would replace the "
            f"weights training starts from. Choose another directory."
        )
    for option, source in {"--train": args.train, "--predict": args.predict}.items():
        if source is not None and source.resolve().is_relative_to(save_dir.resolve()):
            raise CliError(
                f"--save-dir {save_dir} holds the {option} file {source}; saving replaces "
                f"that directory. Choose another one."
            )
    probe = save_dir / "sklearn_gpt2.json" if save_dir.is_dir() else save_dir
    check_writable_file(probe, "--save-dir")


def _prepare_load(args: argparse.Namespace) -> Job:
    if args.predict is None:
        raise CliError(
            f"--load {args.load} predicts with a saved model and trains nothing; give the "
            f"texts to classify with --predict new.csv."
        )
    predict = read_table(args.predict, [args.text_column], encoding=args.encoding,
                         text_column=args.text_column)  # fmt: skip
    output = args.output or Path("predictions.csv")
    check_writable_file(output, "--output")
    if output.resolve() == args.predict.resolve():
        raise CliError(f"--output {output} would overwrite the --predict file; choose another "
                       f"path.")  # fmt: skip
    if output.resolve() == args.load.resolve():
        raise CliError(f"--output {output} would overwrite the --load model; choose another "
                       f"path.")  # fmt: skip
    return Job(False, [], [], predict, None, output, load=args.load)


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
    if args.load is not None:
        return _prepare_load(args)
    _check_model(args.model)
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
    default_save = demo and args.save_dir is None
    save = args.save if args.save is not None or not default_save else DEMO_SAVE
    output = (args.output or Path("predictions.csv")) if predict is not None else None
    _check_paths(args, save, output)
    _check_save_dir(args.save_dir, args)
    _check_export_dir(args.export_onnx, args)
    if predict is not None and output is not None:
        check_output_columns(predict, sorted(set(y)), output)
    return Job(
        demo, X, y, predict, save, output, save_dir=args.save_dir,
        export_onnx=args.export_onnx, quantize=args.quantize,
    )  # fmt: skip


def _check_export_dir(directory: Path | None, args: argparse.Namespace) -> None:
    if directory is None:
        return
    if directory.exists() and not directory.is_dir():
        raise CliError(f"--export-onnx {directory} is a file; give a directory (new or earlier).")
    if args.model is not None and directory.resolve() == Path(args.model).resolve():
        raise CliError(
            f"--export-onnx {directory} is the --model checkpoint; exporting there would "
            f"replace its files. Give another directory."
        )
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise CliError(
            '--export-onnx needs the onnx extra: pip install "sklearn-gpt2[onnx]".'
        ) from None
    check_writable_file(directory / "sklearn_gpt2_onnx.json" if directory.is_dir() else directory,
                        "--export-onnx")  # fmt: skip
