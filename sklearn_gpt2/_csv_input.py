"""Strict CSV reading for the command line: every row as written, or an error naming the line.

A malformed file is refused, never guessed at: undecodable bytes, a duplicated column name, a
row with more or fewer fields than the header, broken quoting, a missing column or a text
column that is empty in every row. Each error names the file, the line and the fix.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CsvError", "Table", "check_encoding", "read_table"]


class CsvError(ValueError):
    """A CSV file that cannot be read as it is; the message says where and how to fix it."""


@dataclass(frozen=True)
class Table:
    """The columns of a CSV file, with the line on which each data row starts.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    columns : dict of str to list of str
        Every column, in the file's order, with one string per data row.
    lines : list of int
        For each data row, the line of the file where it starts (the header is line 1).
    """

    path: Path
    columns: dict[str, list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.lines)


def check_encoding(name: str) -> str:
    """Return the codec to read files with: ``utf-8-sig`` for UTF-8 (a BOM is skipped).

    Parameters
    ----------
    name : str
        An encoding name Python knows, e.g. ``utf-8``, ``latin-1``, ``cp1252``.

    Returns
    -------
    codec : str
        The codec's canonical name.

    Raises
    ------
    ValueError
        If Python has no such encoding.
    """
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise ValueError(
            f"unknown encoding {name!r}; use a name Python knows, e.g. utf-8, latin-1, cp1252."
        ) from None
    # A spreadsheet's "CSV UTF-8" starts with a byte-order mark; it is not part of the header.
    return "utf-8-sig" if codec == "utf-8" else codec


def _decode(path: Path, data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        before = data[: error.start].decode(codec, errors="replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        bad = data[error.start : error.end]
        what = f"byte {bad.hex()} is" if len(bad) == 1 else f"bytes {bad.hex(' ')} are"
        raise CsvError(
            f"{path}, line {line}, character {column}: {what} not valid "
            f"{codec.removesuffix('-sig')}. Pass the file's encoding with --encoding (e.g. "
            f"--encoding cp1252 or latin-1), or save the file as UTF-8."
        ) from None


def _check_header(path: Path, header: list[str], required: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        if name in seen:
            raise CsvError(
                f"{path}, line 1: the header names column {name!r} twice (columns "
                f"{seen[name]} and {number}). Rename one of them so each column name is unique."
            )
        seen[name] = number
    for column in required:
        if column not in seen:
            raise CsvError(
                f"{path} has no column {column!r}; its columns are {header}. Name the right "
                f"one with --text-column / --label-column."
            )


def _ragged(path: Path, line: int, row: list[str], header: list[str]) -> CsvError:
    fields = f"{len(row)} field" + ("s" if len(row) != 1 else "")
    return CsvError(
        f"{path}, line {line}: {fields}, but the header has {len(header)} "
        f"({', '.join(header)}). Put quotes around fields that contain commas "
        f'("like, this") and check the row for a missing or extra field.'
    )


def read_table(
    path: Path, required: Sequence[str], *, encoding: str = "utf-8", text_column: str | None = None
) -> Table:
    """Read a CSV file with a header row, refusing anything malformed.

    Lines that are entirely empty are not rows (as in pandas and :class:`csv.DictReader`); an
    empty text is written ``""``.

    Parameters
    ----------
    path : pathlib.Path
        The CSV file (comma-separated, RFC 4180 quoting).
    required : sequence of str
        Columns that must be present.
    encoding : str, default="utf-8"
        The file's encoding; for UTF-8 a byte-order mark is skipped.
    text_column : str, default=None
        A column that must not be empty in every row (the texts).

    Returns
    -------
    table : Table
        The columns and the line of each row.

    Raises
    ------
    CsvError
        Naming the file, the line and the fix.
    """
    if path.is_dir():
        raise CsvError(f"{path} is a directory, not a CSV file.")
    if not path.is_file():
        raise CsvError(f"file not found: {path}")
    text = _decode(path, path.read_bytes(), check_encoding(encoding))
    csv.field_size_limit(2**31 - 1)  # reviews can be longer than csv's 128 KiB default
    # strict: a stray quote inside an unquoted field, or a quote never closed, is an error
    # instead of a guess that silently merges fields or swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            if row:  # an entirely empty line is no row
                if header is None:
                    header = row
                    _check_header(path, header, required)
                elif len(row) != len(header):
                    raise _ragged(path, start, row, header)
                else:
                    rows.append(row)
                    lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise CsvError(
            f"{path}, line {start}: {error}. Put quotes around fields that contain quotes, "
            f'commas or line breaks, and write a quote inside a quoted field twice ("").'
        ) from None
    if header is None:
        raise CsvError(f"{path} is empty; it needs a header row, e.g. text,label.")
    if not rows:
        raise CsvError(f"{path} has a header but no rows.")
    columns = {name: [row[index] for row in rows] for index, name in enumerate(header)}
    if text_column is not None and not any(columns[text_column]):
        raise CsvError(
            f"{path}: column {text_column!r} is empty in every row; name the column that "
            f"holds the texts with --text-column (the columns are {header})."
        )
    return Table(path, columns, lines)
