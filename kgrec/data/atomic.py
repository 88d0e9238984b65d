"""Reader for RecBole's atomic files (``.inter .item .user .kg .link``).

Format: UTF-8 text, one record a line, fields separated by a tab, no quoting. The first line
is the header, one ``name:type`` entry per column, with ``type`` one of

* ``token``      a categorical id, kept as a string;
* ``token_seq``  a space-separated list of tokens;
* ``float``      a number (an empty field reads as NaN);
* ``float_seq``  a space-separated list of numbers.

Large files take a fast path (pyarrow's multi-threaded CSV reader, token columns dictionary
encoded so 10M rows cost a few hundred MB). When that path rejects a file, a line-by-line
scan finds the first bad line and raises :class:`~kgrec.errors.DataError` naming the file,
line, column and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from kgrec.errors import DataError
from kgrec.utils.names import closest

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
SEQ_SEPARATOR = " "


@dataclass
class TokenColumn:
    """A dictionary-encoded token column: ``vocab[codes]`` gives the raw strings."""

    codes: np.ndarray  # (N,) int32
    vocab: np.ndarray  # (V,) object, distinct raw tokens

    def values(self) -> np.ndarray:
        """The raw token of every row, as an object array."""
        return self.vocab[self.codes]

    def __len__(self) -> int:
        return len(self.codes)


# token -> TokenColumn, float -> float64 array, token_seq -> list[list[str]], float_seq -> list[ndarray]
Column = TokenColumn | np.ndarray | list


@dataclass
class AtomicTable:
    """One atomic file in memory, columns in header order."""

    path: Path
    types: dict[str, str]  # column name -> field type, in header order
    columns: dict[str, Column]
    n_rows: int
    _line_of_row: np.ndarray | None = field(default=None, repr=False)

    def line(self, row: int) -> int:
        """1-based line number in the file of data row ``row`` (blank lines are skipped)."""
        if self._line_of_row is None:
            self._line_of_row = _data_line_numbers(self.path)
        return int(self._line_of_row[row])

    def header(self) -> str:
        """The header as written, ``user_id:token, item_id:token``, for messages."""
        return ", ".join(f"{k}:{v}" for k, v in self.types.items())

    def require(self, *names: str) -> None:
        """Raise a :class:`DataError` naming the first required column that is absent."""
        for name in names:
            if name not in self.types:
                raise DataError(f"missing required column '{name}' (header has: {self.header()})", self.path, line=1)

    def require_ids(self, *names: str) -> None:
        """:meth:`require` for id columns, which must also be of type ``token`` with no empty value
        (nor one of spaces alone, which no query could name)."""
        self.require(*names)
        for name in names:
            kind = self.types[name]
            if kind != "token":
                raise DataError(f"an id column: expected type token, found {kind}", self.path, 1, f"{name}:{kind}")
            column = self.columns[name]
            vocab = column.vocab  # type: ignore[union-attr]
            empty = np.flatnonzero(np.fromiter((not v or v.isspace() for v in vocab), bool, len(vocab)))
            if len(empty):
                rows = np.isin(column.codes, empty)  # type: ignore[union-attr]
                row = int(np.argmax(rows))  # the first such row
                what = "empty id" if vocab[column.codes[row]] == "" else "an id of spaces alone"  # type: ignore[union-attr]
                raise DataError(f"{what}: expected a value", self.path, self.line(row), f"{name}:token")

    def tokens(self, name: str) -> np.ndarray:
        """Raw string values of a token column (object array)."""
        column = self.columns[name]
        if not isinstance(column, TokenColumn):
            raise DataError(f"expected a token column, found {self.types[name]}", self.path, 1, name)
        return column.values()


# Header names that read as a list of tags (token_seq) or a number (float) in a CSV's suggested header
_SEQ_NAMES = ("category", "categories", "genre", "genres", "class", "classes", "tag", "tags", "keywords", "labels", "topics")
_FLOAT_NAMES = ("rating", "timestamp", "price", "score")


def csv_header_hint(header: str, id_column: str | None = None) -> str | None:
    """The atomic header a CSV file with the header line ``header`` would need, tabs written
    ``\\t`` (``product_id,title,category`` gives ``product_id:token\\ttitle:token\\tcategory:token_seq``);
    ``None`` when ``header`` does not look like a CSV line (a tab in it, or no comma or
    semicolon). Names are written as an atomic header and a template can use them (lower case,
    ``_`` for other characters); ``category``/``genres``-like names are ``token_seq``, ``rating``,
    ``timestamp``, ``price`` and ``score`` ``float``, the rest ``token``. ``id_column``: the name the
    id column must have (``item_id``): the first column named ``id`` or ``*_id`` (else the first
    column) is renamed to it, unless a column has it already."""
    import csv

    line = header.rstrip("\r\n")
    if "\t" in line or not ("," in line or ";" in line):
        return None
    try:
        fields = next(csv.reader([line], delimiter="," if "," in line else ";", skipinitialspace=True))
    except (csv.Error, StopIteration):
        return None
    entries: list[tuple[str, str | None]] = []
    for raw in fields:
        name, _, kind = raw.strip().partition(":")  # item_id:token,title:token keeps its types
        name = re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "column"
        entries.append((name, kind if kind in FIELD_TYPES else None))
    names = [n for n, _ in entries]
    if id_column and id_column not in names:
        at = next((i for i, n in enumerate(names) if n == "id" or n.endswith("_id")), 0)
        entries[at] = (id_column, "token")
    out = []
    for name, kind in entries:
        if kind is None:
            last = name.split("_")[-1]
            is_id = name == "id" or name.endswith("_id")
            kind = "token" if is_id else "token_seq" if last in _SEQ_NAMES else "float" if last in _FLOAT_NAMES else "token"
        out.append(f"{name}:{kind}")
    return "\\t".join(out)


def parse_header(path: Path, header: str) -> dict[str, str]:
    """Parse ``name:type<TAB>name:type ...`` into an ordered mapping name -> type."""
    types: dict[str, str] = {}
    for entry in header.rstrip("\r\n").split("\t"):
        name, sep, kind = entry.partition(":")
        if (not sep or not name or kind not in FIELD_TYPES) and (hint := csv_header_hint(header)):
            separator = "commas" if "," in header else "semicolons"
            raise DataError(
                f"the header '{header.strip()}' looks like a CSV line ({separator}, no tab): atomic files are "
                f"tab-separated, unquoted, with a header of name:type entries (type one of {', '.join(FIELD_TYPES)}); "
                f"these columns would need the header '{hint}' (\\t: a tab) and every line's fields separated by tabs "
                "(kgrec data import converts CSV files into a dataset folder)",
                path,
                line=1,
            )
        if not sep or not name:
            example = f", e.g. '{entry.strip()}:token'" if entry.strip() and not sep else ""
            raise DataError(
                f"header entry '{entry}' is not 'name:type' (type one of {', '.join(FIELD_TYPES)}){example}",
                path,
                line=1,
            )
        if kind not in FIELD_TYPES:
            raise DataError(f"unknown field type '{kind}'{closest(kind, FIELD_TYPES)}: expected one of {', '.join(FIELD_TYPES)}", path, 1, entry)
        if name in types:
            raise DataError("column appears twice in the header", path, 1, entry)
        types[name] = kind
    return types


def read_atomic(path: str | Path) -> AtomicTable:
    """Read and validate one atomic file.

    Raises:
        DataError: empty file, malformed header, a line with the wrong number of fields,
            invalid UTF-8, or a value that does not parse as its column's declared type.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    with open(path, "rb") as handle:
        first = handle.readline()
        more = bool(handle.read(1))
    if not first.strip():
        if more:
            raise DataError("line 1 is blank: expected a header line of tab-separated 'name:type' entries", path, line=1)
        raise DataError("empty file: expected a header line of tab-separated 'name:type' entries", path, line=1)
    try:
        header = first.decode("utf-8-sig")  # a byte-order mark is not part of the first name
    except UnicodeDecodeError as exc:
        raise DataError(f"header is not valid UTF-8 ({exc.reason})", path, line=1) from None
    _refuse_carriage_return(path, 1, header.rstrip("\r\n"))  # a file of \r line ends reads as one line
    types = parse_header(path, header)
    names = list(types)

    if first.endswith(b"\n"):
        table = _read_rows(path, names)
    else:  # the header is the whole file, which Arrow cannot skip: no rows
        table = pa.table({name: pa.array([], pa.string()) for name in names})
    if _has_lone_carriage_return(path):  # Arrow reads it as a line break; line numbers would be off
        _diagnose_lines(path, names)

    columns: dict[str, Column] = {}
    for name, kind in types.items():
        raw = table.column(name).combine_chunks() if table.num_rows else pa.array([], pa.string())
        columns[name] = _convert(path, name, kind, raw)
    n_rows = table.num_rows
    del table, raw
    pa.default_memory_pool().release_unused()  # give the parse buffers back to the OS
    return AtomicTable(path=path, types=types, columns=columns, n_rows=n_rows)


_BLOCK_SIZE = 1 << 24


def _read_rows(path: Path, names: list[str]) -> pa.Table:
    """The data rows (the header line skipped), every column as strings, by Arrow's reader;
    where it refuses the file, a :class:`DataError` naming the first bad line."""
    try:
        return _arrow_read(path, names, _BLOCK_SIZE)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        _diagnose_lines(path, names)
        if "straddl" not in str(exc):
            raise DataError(f"could not parse file: {exc}", path) from None
    # A line over two blocks long: blocks that hold the longest line (this file only).
    block_size = min(_longest_line(path) + 1, 2**31 - 1)
    try:
        return _arrow_read(path, names, block_size)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataError(f"could not parse file: {exc}", path) from None


def _arrow_read(path: Path, names: list[str], block_size: int) -> pa.Table:
    """Arrow's multi-threaded read of the rows, in blocks of ``block_size`` bytes."""
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, block_size=block_size),
        parse_options=pacsv.ParseOptions(
            delimiter="\t", quote_char=False, escape_char=False, ignore_empty_lines=True
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _longest_line(path: Path) -> int:
    """Length in bytes of the file's longest line."""
    with open(path, "rb") as handle:
        return max((len(line) for line in handle), default=0)


def _convert(path: Path, name: str, kind: str, raw: pa.Array) -> Column:
    label = f"{name}:{kind}"
    if kind == "token":
        encoded = pc.dictionary_encode(raw)
        indices = encoded.indices  # int32, no nulls; read the buffer directly (to_numpy imports pandas)
        return TokenColumn(
            codes=np.frombuffer(indices.buffers()[1], dtype=np.int32, count=len(indices), offset=indices.offset * 4).copy(),
            vocab=np.asarray(encoded.dictionary.to_pylist(), dtype=object),
        )
    if kind == "float":
        stripped = pc.utf8_trim_whitespace(raw)
        # an empty cell is NaN; a regex option, not a Python scalar, which pyarrow would check
        # against pandas types (importing pandas, 0.4 s, as to_numpy does)
        filled = pc.replace_substring_regex(stripped, pattern="^$", replacement="nan")
        try:
            values = pc.cast(filled, pa.float64())
        except pa.ArrowInvalid:
            row = _first_unparsable(filled)
            value = raw[row].as_py()
            line = int(_data_line_numbers(path)[row])
            raise DataError(f"value '{value}' is not a number (declared float)", path, line, label) from None
        assert values.null_count == 0  # read with strings_can_be_null=False
        return np.frombuffer(values.buffers()[1], dtype=np.float64, count=len(values), offset=values.offset * 8).copy()
    # Sequences: split on single spaces, ignore empty pieces.
    pieces = [[p for p in s.split(SEQ_SEPARATOR) if p] for s in raw.to_pylist()]
    if kind == "token_seq":
        return pieces
    out = []
    for row, seq in enumerate(pieces):
        try:
            out.append(np.asarray([float(p) for p in seq], dtype=np.float64))
        except ValueError:
            bad = next(p for p in seq if not _is_float(p))
            line = int(_data_line_numbers(path)[row])
            raise DataError(f"value '{bad}' is not a number (declared float_seq)", path, line, label) from None
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_unparsable(values: pa.Array) -> int:
    """Row of the first value that Arrow's float cast refuses (the parser that refused the
    column, so the row is found whatever ``float()`` would say), by bisection."""
    lo, hi = 0, len(values)  # the first refused value is in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(values.slice(lo, mid - lo), pa.float64())
            lo = mid
        except pa.ArrowInvalid:
            hi = mid
    return lo


def _has_lone_carriage_return(path: Path, chunk: int = 1 << 24) -> bool:
    """Whether the file has a ``\r`` not followed by ``\n`` (a regex scan, about 1 GB/s)."""
    lone = re.compile(rb"\r(?!\n)")
    with open(path, "rb") as handle:
        carry = b""
        while block := handle.read(chunk):
            data = carry + block
            carry = data[-1:] if data.endswith(b"\r") else b""  # its \n may open the next block
            if b"\r" in data and lone.search(data[: len(data) - len(carry)]):  # the regex only where needed
                return True
        return False  # a \r that ends the file ends its last line


def _data_line_numbers(path: Path) -> np.ndarray:
    """Line number of each data row (blank lines are not rows, the header is line 1)."""
    lines = []
    with open(path, "rb") as handle:
        handle.readline()
        for number, line in enumerate(handle, start=2):
            if line.strip(b"\r\n"):
                lines.append(number)
    return np.asarray(lines, dtype=np.int64)


def _diagnose_lines(path: Path, names: list[str]) -> None:
    """Scan line by line and raise a precise DataError for the first malformed line, if any."""
    expected = len(names)
    with open(path, "rb") as handle:
        handle.readline()
        for number, line in enumerate(handle, start=2):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"invalid UTF-8 at byte {exc.start + 1} of the line", path, number) from None
            text = text.rstrip("\r\n")
            _refuse_carriage_return(path, number, text)
            if not text:
                continue
            found = text.count("\t") + 1
            if found != expected:
                raise DataError(
                    f"expected {expected} tab-separated fields ({', '.join(names)}), found {found}",
                    path,
                    number,
                )


def _refuse_carriage_return(path: Path, number: int, text: str) -> None:
    """Raise a :class:`DataError` at line ``number`` if ``text`` (the line, its end stripped) holds a ``\\r``."""
    if "\r" in text:
        raise DataError(
            f"a carriage return at character {text.index(chr(13)) + 1} inside the line: expected lines "
            "to end with \\n or \\r\\n and no \\r elsewhere",
            path,
            number,
        )
