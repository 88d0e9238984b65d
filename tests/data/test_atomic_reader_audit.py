from pathlib import Path

import pytest

from kgrec.data.atomic import read_atomic
from kgrec.errors import DataError


def write(tmp_path: Path, content: bytes, name: str = "t.item") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("content", [b"item_id:token\ttitle:token", b"\xef\xbb\xbfitem_id:token\tscore:float"])
def test_a_header_only_file_without_a_final_newline_reads_as_no_rows(tmp_path, content):
    table = read_atomic(write(tmp_path, content))  # as it does with the newline
    assert table.n_rows == 0
    assert all(len(column) == 0 for column in table.columns.values())


def test_a_blank_first_line_is_not_called_an_empty_file(tmp_path):
    path = write(tmp_path, b"\nitem_id:token\n1\n")
    with pytest.raises(DataError) as info:
        read_atomic(path)
    assert str(info.value).startswith(f"{path}:1: line 1 is blank: expected a header line")


@pytest.mark.parametrize(
    ("content", "at"),
    [
        (b"item_id:token\ttitle:token\r1\tA\r2\tB\r", 26),  # classic Mac line ends: one line, the header
        (b"item_id:token\rtitle:token\n1\tA\n", 14),
    ],
)
def test_a_carriage_return_inside_the_header_is_located(tmp_path, content, at):
    path = write(tmp_path, content)
    with pytest.raises(DataError) as info:
        read_atomic(path)
    assert str(info.value) == (
        f"{path}:1: a carriage return at character {at} inside the line: expected lines to end with \\n or "
        "\\r\\n and no \\r elsewhere"
    )


def test_a_line_longer_than_the_reader_blocks_is_read(tmp_path):
    long = b"w" * (34 << 20)  # over two of the reader's 16 MB blocks
    path = write(tmp_path, b"item_id:token\ttext:token\n1\t" + long + b"\n2\tx\n")
    table = read_atomic(path)
    assert table.tokens("item_id").tolist() == ["1", "2"]
    assert [len(text) for text in table.tokens("text")] == [34 << 20, 1]
