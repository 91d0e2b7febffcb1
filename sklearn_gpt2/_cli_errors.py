"""Every failure of the command line as one line on standard error: what went wrong and the fix.

The package's own errors already name the problem and the fix; they are printed as they are,
on one line. Errors from deeper down (torch, safetensors, the tokenizer's writer, the file
system) are recognised where they have a known cause, and otherwise named together with the
step that failed, so that no traceback ever reaches the user.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

__all__ = ["CliError", "explain", "one_line", "step"]


class CliError(Exception):
    """A problem with the command line's inputs or one of its steps, reported in one line."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (line breaks included) as one space."""
    return " ".join(str(text).split())


def _message(error: BaseException) -> str:
    """The error's text on one line, without the "[Errno N]" prefix of an ``OSError``."""
    if isinstance(error, OSError) and error.strerror and str(error).startswith("[Errno"):
        text = error.strerror + (f": {error.filename}" if error.filename else "")
    else:
        text = str(error)
    return one_line(text) or type(error).__name__


def _too_large(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        return True
    return "file too large" in str(error).lower()


def _disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "no space left" in str(error).lower()


def _out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or "out of memory" in str(error).lower()


def _raised_by_the_package(error: BaseException) -> bool:
    """Whether ``error`` was raised in this package's code (whose messages carry the fix)."""
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    return Path(frame.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)


def explain(error: BaseException, what: str, after: str = "") -> str:
    """The one line to print for ``error``, raised while ``what`` (e.g. "training") ran.

    Parameters
    ----------
    error : BaseException
        What was raised.
    what : str
        The step that failed, as a phrase ("loading the model from m.joblib").
    after : str, default=""
        A sentence added to messages the package did not write itself (e.g. what was kept).

    Returns
    -------
    line : str
        One line without a line break: the problem and the fix.
    """
    message = _message(error)
    if isinstance(error, CliError):
        return message
    if isinstance(error, FloatingPointError):
        return f"{message} On the command line: pass a smaller --lr."
    fix = ""
    if _too_large(error):
        cause = "a file grew past the file size limit"
        fix = "Raise the limit (ulimit -f) or write to a file system that allows larger files."
    elif _disk_full(error):
        cause, fix = "the disk is full", "Free some space or write elsewhere."
    elif _out_of_memory(error):
        cause = "out of memory"
        fix = (
            "Pass a smaller --batch-size or --max-length, or --tuning lora or head, which keep "
            "less in memory."
        )
    elif type(error).__name__ == "SafetensorError":
        cause = "a weights file (model.safetensors) is truncated or corrupt"
        fix = "Download or copy the checkpoint again, or save the model again."
    if isinstance(error, (ValueError, TypeError)) or (
        isinstance(error, (OSError, RuntimeError)) and _raised_by_the_package(error)
    ):
        # The package's errors (and scikit-learn's parameter checks) name the problem and
        # the fix; that includes its message for a checkpoint that cannot be loaded.
        return f"{message} {fix}".strip()
    if not fix:
        cause = f"an unexpected {type(error).__name__}"
        fix = (
            "Check the inputs and options of that step; if they are right, please report this "
            "with the command you ran."
        )
    return f"{what} failed: {cause} ({message}). {fix}{' ' + after if after else ''}"


@contextmanager
def step(what: str, after: str = "") -> Iterator[None]:
    """Run a step of the command; any error leaves it as a :class:`CliError` in one line.

    ``KeyboardInterrupt`` (not an ``Exception``) passes through, for the caller to report.

    Parameters
    ----------
    what : str
        The step, as a phrase ("training", "saving the model to m.joblib").
    after : str, default=""
        Passed on to :func:`explain`.
    """
    try:
        yield
    except CliError:
        raise
    except Exception as error:
        raise CliError(explain(error, what, after)) from error
