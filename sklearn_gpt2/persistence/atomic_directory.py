"""Writing a saved model so that a failure never destroys the previous one.

A directory is written into a fresh staging directory beside its target and swapped in only
when complete. A failure (disk full, no permission, an interrupt) removes the
partial copy and says that the previous model is intact.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .atomic_file import REASONS, AtomicWriteError

#: Prefix of the name a replaced directory has while it is being swapped out.
OLD_PREFIX = ".old-"


def _failure(target: Path, error: Exception, existed: bool) -> AtomicWriteError:
    code = getattr(error, "errno", None)
    if code is None:
        # Writers that wrap the OS error in their own (safetensors) keep its number in text.
        found = re.search(r"os error (\d+)", str(error))
        code = int(found.group(1)) if found else None
    reason = REASONS.get(code or 0, getattr(error, "strerror", None) or str(error))
    kept = (
        f"the previous model in {target} is intact" if existed else f"nothing was left at {target}"
    )
    return AtomicWriteError(code, f"Saving to {target} failed: {reason}; {kept}.")


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}{OLD_PREFIX}", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def leftover_of(target: Path) -> Path | None:
    """A previous save that an interrupted swap left beside ``target``, if any."""
    candidates = sorted(target.parent.glob(f".{target.name}{OLD_PREFIX}*"))
    return candidates[-1] if candidates else None


@contextlib.contextmanager
def replacing_directory(target: Path, keep: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Yield an empty staging directory; when the block succeeds, it replaces ``target``.

    Parameters
    ----------
    target : pathlib.Path
        The directory to (re)place. A file of that name is refused before anything is written.
    keep : frozenset of str, default=frozenset()
        Names of files and folders in the old ``target`` to carry over (what the package did
        not write, such as a log), unless the new save writes one of the same name.
    """
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            f"Cannot save to {target}: it is a file, not a directory. Choose another path."
        )
    existed = target.is_dir()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
    except OSError as error:
        raise _failure(target, error, existed) from error
    try:
        yield staging
        for name in keep:
            if (staging / name).exists():
                continue
            if (target / name).is_dir():
                shutil.copytree(target / name, staging / name, symlinks=True)
            elif (target / name).exists():
                shutil.copy2(target / name, staging / name, follow_symlinks=False)
        _swap_in(staging, target)
    except Exception as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise _failure(target, error, existed) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
