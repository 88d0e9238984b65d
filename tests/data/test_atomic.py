from pathlib import Path

import numpy as np
import pytest

from kgrec.data.atomic import TokenColumn, read_atomic
from kgrec.errors import DataError


def write(tmp_path: Path, text: str, name: str = "t.inter") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("|", "\t"), encoding="utf-8")
    return path


def test_reads_every_field_type(tmp_path):
    path = write(tmp_path, "id:token|tags:token_seq|score:float|vec:float_seq|extra:token\na|x y|1.5|1 2|k\nb||2|3|\n")
    table = read_atomic(path)
    assert table.n_rows == 2
    assert list(table.types) == ["id", "tags", "score", "vec", "extra"]
    assert isinstance(table.columns["id"], TokenColumn)
    assert table.tokens("id").tolist() == ["a", "b"]
    assert table.columns["tags"] == [["x", "y"], []]
    np.testing.assert_array_equal(table.columns["score"], [1.5, 2.0])
    np.testing.assert_array_equal(table.columns["vec"][0], [1.0, 2.0])
    assert table.tokens("extra").tolist() == ["k", ""]


def test_empty_float_reads_as_nan(tmp_path):
    table = read_atomic(write(tmp_path, "id:token|score:float\na|\n"))
    assert np.isnan(table.columns["score"][0])


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"t.inter:1: empty file"):
        read_atomic(write(tmp_path, ""))


def test_header_without_type_names_the_entry(tmp_path):
    with pytest.raises(DataError, match=r"t.inter:1: header entry 'item_id' is not 'name:type'"):
        read_atomic(write(tmp_path, "user_id:token|item_id\nu|i\n"))


def test_unknown_type_lists_the_valid_ones(tmp_path):
    with pytest.raises(DataError, match=r"unknown field type 'int': expected one of token, token_seq"):
        read_atomic(write(tmp_path, "user_id:token|n:int\nu|1\n"))


def test_wrong_number_of_fields_names_line_and_expected_columns(tmp_path):
    path = write(tmp_path, "a:token|b:token\nx|y\nx|y|z\n")
    with pytest.raises(DataError) as info:
        read_atomic(path)
    assert str(info.value) == f"{path}:3: expected 2 tab-separated fields (a, b), found 3"


def test_value_not_parsing_as_float_names_line_and_column(tmp_path):
    path = write(tmp_path, "id:token|rating:float\na|1\n\nb|five\n")
    with pytest.raises(DataError) as info:
        read_atomic(path)
    assert str(info.value) == f"{path}:4: column 'rating:float': value 'five' is not a number (declared float)"


def test_bad_float_seq_value_is_located(tmp_path):
    with pytest.raises(DataError, match=r":3: column 'v:float_seq': value 'x'"):
        read_atomic(write(tmp_path, "id:token|v:float_seq\na|1 2\nb|3 x\n"))


def test_invalid_utf8_is_located(tmp_path):
    path = tmp_path / "t.inter"
    path.write_bytes(b"a:token\tb:token\nx\ty\n\xff\xfe\tz\n")
    with pytest.raises(DataError, match=r"t.inter:3: invalid UTF-8 at byte 1 of the line"):  # 1-based, as elsewhere
        read_atomic(path)


def test_blank_lines_are_skipped_but_line_numbers_stay_true(tmp_path):
    table = read_atomic(write(tmp_path, "a:token\nx\n\ny\n"))
    assert table.n_rows == 2
    assert table.line(1) == 4


def test_duplicate_header_column_is_refused(tmp_path):
    with pytest.raises(DataError, match="column appears twice"):
        read_atomic(write(tmp_path, "a:token|a:token\nx|y\n"))


@pytest.mark.parametrize("value", ["1_000", "３", "0x10"])
def test_value_python_reads_but_arrow_refuses_is_located(tmp_path, value):
    path = write(tmp_path, f"id:token|rating:float\na|1\nb|{value}\nc|2\n")
    with pytest.raises(DataError, match=rf":3: column 'rating:float': value '{value}' is not a number"):
        read_atomic(path)


def test_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "t.inter"
    path.write_bytes("\ufeffuser_id:token\titem_id:token\nu\ti\n".encode())
    assert list(read_atomic(path).types) == ["user_id", "item_id"]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"a:token\tb:token\nx\ty\nz\rw\tv\n", "t.inter:3"),  # Arrow fails on the field count
        (b"a:token\nx\nz\rw\nv\n", "t.inter:3"),  # one column: Arrow would read an extra row
    ],
)
def test_carriage_return_inside_a_line_is_located(tmp_path, content, where):
    path = tmp_path / "t.inter"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"{where}: a carriage return at character 2 inside the line"):
        read_atomic(path)


def test_crlf_files_and_a_final_carriage_return_read_normally(tmp_path):
    path = tmp_path / "t.item"
    path.write_bytes(b"item_id:token\r\na\r\nb\r")
    assert read_atomic(path).tokens("item_id").tolist() == ["a", "b"]
