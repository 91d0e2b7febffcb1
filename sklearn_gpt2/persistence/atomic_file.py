"""Atomic file writes: a file is replaced whole or not at all, and destinations are checked early.

A save writes a temporary file in the target's own directory (so the final ``os.replace`` is a
rename within one file system, which POSIX and Windows make atomic), flushes it to disk, then
renames it over the target. If anything fails before the rename, the temporary file is removed
and the previous file at the target, if any, is untouched.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["AtomicWriteError", "atomic_joblib_dump", "atomic_write", "check_writable_file"]

# By name: not every platform defines every code (Windows has no EDQUOT).
REASONS = {
    getattr(errno, name): reason
    for name, reason in [
        ("ENOSPC", "the disk is full"),
        ("EDQUOT", "the disk quota is exhausted"),
        ("EFBIG", "the file is larger than this process may write (file size limit)"),
        ("EACCES", "permission denied"),
        ("EPERM", "permission denied"),
        ("EROFS", "the file system is read-only"),
    ]
    if hasattr(errno, name)
}


class AtomicWriteError(OSError):
    """Writing a file failed; the previous file at the target, if any, is intact."""


def _reason(error: OSError) -> str:
    return REASONS.get(error.errno or 0, error.strerror or str(error))


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable after a power cut. Not possible on every platform or
    # file system (Windows cannot open a directory), and the data is already safe on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any], *, what: str = "the file"
) -> Path:
    """Write ``path`` through ``write(handle)`` so that it is replaced whole or not at all.

    Parameters
    ----------
    path : str or path-like
        The target file. Its directory must exist.
    write : callable
        Called with a binary file handle open on the temporary file; it writes the content.
    what : str, default="the file"
        What the file is, for the error message (e.g. ``"the model"``).

    Returns
    -------
    path : pathlib.Path
        The target, now holding the new content.

    Raises
    ------
    AtomicWriteError
        When writing or renaming fails (disk full, permission, ...). The temporary file has
        been removed and the previous file at ``path``, if any, is unchanged.
    """
    path = Path(path)
    existed = path.exists()
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never write through a file (or link) someone else put there. Mode 0o666 lets
        # the umask decide the permissions, as for an ordinary new file.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if not isinstance(error, OSError):
            raise  # an interrupt or a bug in ``write``: the target is still untouched
        previous = (
            f"the previous file at {path} is intact" if existed else f"no file was left at {path}"
        )
        raise AtomicWriteError(
            f"could not save {what} to {path}: {_reason(error)} ({error}); {previous}."
        ) from error
    _fsync_directory(path.parent)
    return path


def atomic_joblib_dump(obj: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``obj`` to ``path`` with :func:`joblib.dump`, atomically.

    Parameters
    ----------
    obj : object
        What to save, e.g. a fitted estimator.
    path : str or path-like
        The joblib file. Its directory must exist.
    **kwargs
        Passed on to :func:`joblib.dump` (e.g. ``compress=3``).

    Returns
    -------
    path : pathlib.Path
        The joblib file.

    Raises
    ------
    AtomicWriteError
        When the file cannot be written; the previous file at ``path``, if any, is intact.
    """
    import joblib  # here, not at import time: the command line's --help stays light

    return atomic_write(path, lambda handle: joblib.dump(obj, handle, **kwargs), what="the model")


def check_writable_file(path: str | os.PathLike[str], option: str) -> None:
    """Check, before any long work, that a file can be written at ``path``.

    The nearest existing folder on the way to ``path`` must be a writable directory (missing
    folders below it are created when the file is written) and ``path`` must not be a
    directory. Writability is tested by creating and removing a file there, which also holds
    for root and for network file systems where permission bits say little.

    Parameters
    ----------
    path : str or path-like
        Where the file will be written.
    option : str
        The option that named it, for the message (e.g. ``"--save"``).

    Raises
    ------
    ValueError
        Saying what is wrong with the path and how to fix it.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"{option} {path} is a directory; give a file name, e.g. {path / 'model.joblib'}."
        )
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(
            f"{option} {path}: {folder} is a file, not a directory; choose another path."
        )
    probe = folder / f".sklearn-gpt2-write-test-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as error:
        raise ValueError(
            f"{option} {path}: cannot write in {folder} ({_reason(error)}); choose a directory "
            f"you can write to."
        ) from error
