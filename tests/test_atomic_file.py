"""Atomic writes: a full disk, a failing writer or an interrupt leave the previous file intact."""

import os
import stat
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest

from sklearn_gpt2.persistence.atomic_file import (
    AtomicWriteError,
    atomic_joblib_dump,
    atomic_write,
    check_writable_file,
)


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_dump_writes_a_file_that_loads(tmp_path):
    path = tmp_path / "model.joblib"
    value = {"weights": np.arange(10.0), "name": "x"}
    assert atomic_joblib_dump(value, path, compress=3) == path
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded["weights"], value["weights"])
    assert loaded["name"] == "x" and leftovers(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_file_gets_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_joblib_dump([1, 2], tmp_path / "m.joblib")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "m.joblib").stat().st_mode) == 0o644


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.joblib"
    atomic_joblib_dump("old", path)
    atomic_joblib_dump("new", path)
    assert joblib.load(path) == "new" and leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs resource limits (POSIX)")
def test_disk_full_keeps_the_previous_file(tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump({"previous": np.ones(3)}, path)
    before = path.read_bytes()
    # The child may write 1 MiB per file; the new model is 8 MB. SIGXFSZ is ignored so that
    # the write fails with EFBIG as a full disk fails with ENOSPC, instead of killing it.
    script = f"""
        import resource, signal
        import numpy as np
        from sklearn_gpt2.persistence.atomic_file import AtomicWriteError, atomic_joblib_dump
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
        try:
            atomic_joblib_dump({{"new": np.zeros(10**6)}}, {str(path)!r})
        except AtomicWriteError as error:
            print(error)
        else:
            print("no error")
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert message.startswith(f"could not save the model to {path}: the file is larger")
    assert message.endswith(f"the previous file at {path} is intact.")
    assert path.read_bytes() == before
    np.testing.assert_array_equal(joblib.load(path)["previous"], np.ones(3))
    assert leftovers(tmp_path) == []


def test_failure_without_a_previous_file_says_none_was_left(tmp_path):
    def fail(handle):
        handle.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(AtomicWriteError, match=r"the disk is full .* no file was left at"):
        atomic_write(tmp_path / "m.joblib", fail, what="the model")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_interrupt_or_bug_in_the_writer_leaves_the_target_alone(error, tmp_path):
    path = tmp_path / "m.joblib"
    path.write_bytes(b"previous")

    def write(handle):
        handle.write(b"half a model")
        raise error

    with pytest.raises(error):
        atomic_write(path, write)
    assert path.read_bytes() == b"previous" and leftovers(tmp_path) == []


def test_unpicklable_object_leaves_the_previous_file(tmp_path):
    path = tmp_path / "m.joblib"
    atomic_joblib_dump("previous", path)
    with pytest.raises(Exception, match="pickle"):
        atomic_joblib_dump(lambda: None, path)
    assert joblib.load(path) == "previous" and leftovers(tmp_path) == []


def test_check_writable_file(tmp_path):
    check_writable_file(tmp_path / "new" / "deeper" / "m.joblib", "--save")  # made at write time
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match=r"--save .* is a directory; give a file name"):
        check_writable_file(tmp_path, "--save")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        check_writable_file(tmp_path / "file" / "m.joblib", "--output")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_check_writable_file_refuses_a_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ValueError, match=r"cannot write in .*permission denied"):
        check_writable_file(locked / "m.joblib", "--save")
