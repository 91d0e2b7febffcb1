"""Manifests without torch: digests of files and of a manifest's own fields, read and verified.

A saved directory (``save_pretrained``, an ONNX export) lists each of its files with its size
and SHA-256, and carries the digest of its own fields, so a modified or truncated file is
refused by name before anything is loaded. This module imports only the standard library, so
a torch-free runtime verifies what it loads the same way the estimators do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any


def file_digest(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file, as a manifest lists them."""
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            sha.update(chunk)
    return {"size": path.stat().st_size, "sha256": sha.hexdigest()}


def manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of every manifest field but ``digest`` itself, in canonical JSON."""
    fields = {name: value for name, value in manifest.items() if name != "digest"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def listed_name(name: str) -> PurePosixPath:
    """A file name of a manifest as a safe relative path (a plain name, or one folder deep)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) > 2 or not path.parts:
        raise ValueError(f"the manifest lists {name!r}, which is not a file of the save")
    return path


def list_files(directory: Path) -> dict[str, dict[str, Any]]:
    """The ``files`` field of a manifest: every file (one folder deep) with its digest.

    A file in a folder of ``directory`` is listed as ``folder/name``.
    """
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file():
            files[path.name] = file_digest(path)
        elif path.is_dir():
            for inner in sorted(path.iterdir()):
                if inner.is_file():
                    files[f"{path.name}/{inner.name}"] = file_digest(inner)
    return files


def write_manifest_file(path: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` to ``path`` with the digest of its own fields added."""
    manifest = {**manifest, "digest": manifest_digest(manifest)}
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


def read_manifest_file(path: Path, format_name: str, what: str) -> dict[str, Any]:
    """Read a manifest of format ``format_name``; refuse a missing, corrupt or edited one.

    Parameters
    ----------
    path : Path
        The manifest file.
    format_name : str
        The value its ``format`` field must have.
    what : str
        What writes such directories, for the error messages (e.g. ``"export_onnx"``).
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {path.parent} is not a directory written by {what}, or the "
            f"save did not finish."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is corrupt or incomplete (not valid JSON: {error}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != format_name:
        raise ValueError(f"{path} is not a {format_name} manifest (its 'format' is wrong).")
    if manifest.get("digest") != manifest_digest(manifest):
        raise ValueError(
            f"{path} was modified after saving: its fields do not match its own SHA-256 "
            f"digest. Write the directory again with {what} instead of editing it."
        )
    return manifest


def check_files(
    directory: Path,
    files: dict[str, Any],
    manifest_name: str,
    *,
    what: str = "saved directory",
    remedy: str = "Save it again.",
) -> None:
    """Refuse a missing file, or one whose size or SHA-256 differs from the manifest's."""
    for name, expected in files.items():
        path = directory.joinpath(*listed_name(name).parts)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; the {what} is incomplete.")
        if not isinstance(expected, dict) or file_digest(path) != expected:
            raise ValueError(
                f"{path} is corrupt, incomplete or was modified after saving (its size or "
                f"SHA-256 differs from {manifest_name}). {remedy}"
            )
