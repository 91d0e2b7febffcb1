"""Strict CSV reading: rows as written, line numbers that match the file, errors that name them."""

import pytest

from sklearn_gpt2._csv_input import CsvError, check_encoding, read_table


def table_of(tmp_path, content, **kwargs):
    path = tmp_path / "t.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return read_table(path, ["text"], **kwargs)


def test_columns_and_lines(tmp_path):
    content = 'text,label\n"two\r\nlines, quoted",a\n\n"say ""hi""",b\r\n"",c\n'
    table = table_of(tmp_path, content)
    assert table.columns == {
        "text": ["two\r\nlines, quoted", 'say "hi"', ""],
        "label": ["a", "b", "c"],
    }
    assert table.lines == [2, 5, 6] and len(table) == 3  # a blank line is no row


def test_utf8_byte_order_mark_and_other_encodings(tmp_path):
    assert table_of(tmp_path, "\ufefftext\nok\n".encode()).columns == {"text": ["ok"]}
    latin = "text\nna\u00efve\n".encode("latin-1")
    assert table_of(tmp_path, latin, encoding="latin-1").columns == {"text": ["na\u00efve"]}
    assert check_encoding("UTF8") == "utf-8-sig" and check_encoding("latin_1") == "iso8859-1"
    with pytest.raises(ValueError, match="unknown encoding 'nope'"):
        check_encoding("nope")


def test_undecodable_byte_names_line_and_character(tmp_path):
    with pytest.raises(CsvError, match=r"line 3, character 5: byte ff is not valid utf-8"):
        table_of(tmp_path, b"text\nfine\nabcd\xffe\n")
    # Another encoding's multi-byte characters count as one character each.
    utf16 = "text\n\u00e9\u00e9x\n".encode("utf-16-le") + b"\x00\xd8"  # a lone surrogate
    with pytest.raises(CsvError, match=r"line 3, character 1: bytes 00 d8 are not valid utf-16-le"):
        table_of(tmp_path, utf16, encoding="utf-16-le")


def test_fewer_fields_after_a_multi_line_field_names_the_row_start(tmp_path):
    with pytest.raises(CsvError, match=r"line 5: 1 field, but the header has 2 \(text, label\)"):
        table_of(tmp_path, 'text,label\n"a\nb\nc",x\nshort\n')


def test_header_with_an_empty_name_is_kept(tmp_path):
    # One unnamed column (a trailing comma) is no ambiguity; two are a duplicate.
    assert table_of(tmp_path, "text,\nok,\n").columns == {"text": ["ok"], "": [""]}
    with pytest.raises(CsvError, match="names column '' twice"):
        table_of(tmp_path, "text,,\nok,,\n")


def test_some_empty_texts_are_texts(tmp_path):
    table = table_of(tmp_path, 'text\n""\nfine\n', text_column="text")
    assert table.columns["text"] == ["", "fine"]
    with pytest.raises(CsvError, match="column 'text' is empty in every row"):
        table_of(tmp_path, 'text\n""\n""\n', text_column="text")
