"""Turn a user's own CSV files into a dataset folder of atomic files (``kgrec data import``, or
:func:`import_csv` from Python).

Input: an interactions table (user, item, optional rating and time), optionally an item table
(text and attribute columns), KG triples (head, relation, tail) and item -> entity links.
Without links, ``--kg`` links each item to the KG entity of the same id (exact match), where the
KG has one: the common KG written in the catalogue's own ids (:func:`_links_by_id`).
Output: ``OUT/NAME.inter`` (+ ``.item``, ``.kg``, ``.link``), written as one folder atomically,
and only once the files load (:func:`kgrec.data.load_dataset`): a problem the loader finds is
reported at the CSV file, line and column it came from, and leaves ``OUT`` as it was.

Fields are split on ``--sep`` (one character: CSV quoting applies; several, as MovieLens-1M's
``::``: each line is split on it, with no quoting). A field may hold up to :data:`FIELD_MAX`
characters (64 MiB; Python's csv stops at 128 KiB, a long article).

The time column holds Unix seconds or ISO 8601 dates and times in the extended form
``YYYY-MM-DD[(T| )HH:MM[:SS[.f...]]][Z|±HH:MM]`` (any number of fractional digits) (``2020-01-31``, ``2020-01-31T12:30:00``,
``2020-01-31 12:30:00+02:00``; UTC when no offset is given), written as Unix seconds. A plain
number is always seconds (``20200131`` is not read as a date).

Column typing in ``.item``: text columns (``--text-cols``, e.g. a title) become ``token``
fields kept verbatim; multi-valued columns (``--seq-cols``, values split on ``--seq-sep``,
e.g. ``Action|Comedy``) become ``token_seq`` fields, with spaces (tabs, line breaks) inside a
value replaced by ``_`` because ``token_seq`` is space-separated. Their names are written as
:func:`field_name` says (``Movie Title`` -> ``movie_title``), so templates and configs can name
them; a renaming is reported as a note.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import math
import os
import re
import shlex
import sys
import warnings
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from kgrec.data.dataset import Dataset, DisjointIdsError, IdSide, RepeatedIdError, load_dataset
from kgrec.data.info import seconds_hint
from kgrec.errors import DataError, DataWarning
from kgrec.utils.io import atomic_dir, named_folder, replace_refusal
from kgrec.utils.names import some_names

WRITTEN = ("inter", "item", "kg", "link")  # the files NAME.<kind> an import writes
FIELD_MAX = 1 << 26  # the longest CSV field read, 64 MiB (csv's own cap, 128 KiB, refused an article's text)


def print_note(text: str) -> None:
    """Say ``text`` on stderr, as ``note: ...``: what an import did that the user may not expect."""
    print(f"note: {text}", file=sys.stderr)


#: What a plain number of the time column may count, and how many of them make a second.
TIME_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


@dataclass
class ImportSpec:
    """Which files and columns to import. Column names refer to the CSV headers.

    Each field is the option of ``kgrec data import`` with the same name (``text_cols`` is
    ``--text-cols``), and error messages name the options. Files may be given as
    ``str`` or any ``os.PathLike`` (kept as :class:`~pathlib.Path`); ``text_cols`` and
    ``seq_cols`` as a list of names or one comma-separated string, as the options read it
    (:func:`split_columns`: ``"title,description"``). ``note`` is told what the import did that
    the user may not expect (default: printed on stderr as ``note: ...``; ``note=notes.append``
    collects them).
    """

    interactions: str | os.PathLike[str]  # files: a Path once made (__post_init__)
    out: str | os.PathLike[str]
    items: str | os.PathLike[str] | None = None
    kg: str | os.PathLike[str] | None = None
    links: str | os.PathLike[str] | None = None
    user_col: str = "user_id"
    item_col: str = "item_id"
    rating_col: str | None = None
    label_col: str | None = None  # 1 a click, 0 an impression without one (the like tower's negatives)
    time_col: str | None = None
    text_cols: str | Sequence[str] = field(default_factory=tuple)  # a tuple of names once made
    seq_cols: str | Sequence[str] = field(default_factory=tuple)
    seq_sep: str = "|"
    head_col: str = "head"
    relation_col: str = "relation"
    tail_col: str = "tail"
    link_item_col: str = "item_id"
    entity_col: str = "entity_id"
    sep: str | None = None  # None: tab for .tsv/.tab, else comma; several characters: no quoting
    time_unit: str = "s"  # what a plain number of the time column counts (TIME_UNITS); dates are dates
    note: Callable[[str], None] = print_note  # told what the import did that the user may not expect

    def __post_init__(self) -> None:
        # a str path had no .is_file(); a str of columns was read a character at a time
        for name in ("interactions", "out", "items", "kg", "links"):
            if (value := getattr(self, name)) is not None:
                setattr(self, name, Path(value))
        for name in ("text_cols", "seq_cols"):
            value = getattr(self, name)
            setattr(self, name, split_columns(value) if isinstance(value, str) else tuple(value))


def split_columns(text: str) -> tuple[str, ...]:
    """The column names of a comma-separated list, as ``--text-cols`` and ``--seq-cols`` (and
    :class:`ImportSpec` given a string) read it: each stripped of surrounding spaces, empty ones
    dropped (``"title, description,"`` -> ``("title", "description")``). A column whose name holds
    a comma can be given from Python only, in a list."""
    return tuple(c.strip() for c in text.split(",") if c.strip())


def import_csv(spec: ImportSpec) -> Path:
    """Write the dataset folder ``spec.out`` and return it: what ``kgrec data import`` does, from
    Python. Raises DataError on bad input, at the CSV file, line and column, with ``spec.out``
    left as it was.

    Example (``clicks.csv`` holds ``user,item,time``; ``products.csv`` ``item,title,tags``)::

        from kgrec.data import load_dataset
        from kgrec.data.importer import ImportSpec, import_csv

        spec = ImportSpec(interactions="clicks.csv", out="data/shop", user_col="user", item_col="item",
                          time_col="time", items="products.csv", text_cols="title", seq_cols="tags")
        folder = import_csv(spec)  # data/shop: the dataset named shop
        dataset = load_dataset(folder)  # import_dataset(spec) returns it without reading it again

    See :class:`ImportSpec` for the fields (the options of ``kgrec data import``, ``--text-cols``
    as ``text_cols``) and :func:`import_dataset` to get the dataset loaded."""
    return import_dataset(spec).path


def import_dataset(spec: ImportSpec) -> Dataset:
    """:func:`import_csv`, returning the dataset as :func:`~kgrec.data.load_dataset` reads the
    folder written (the import loads it to check it: ``kgrec data import`` counts it without
    reading it a second time)::

        dataset = import_dataset(ImportSpec(interactions="clicks.csv", out="data/shop"))
        dataset.n_users, dataset.n_items

    Error messages name the options of ``kgrec data import``; each is the :class:`ImportSpec`
    field of the same name (``--text-cols`` is ``text_cols``)."""
    out = named_folder(spec.out)  # data/x/..: named data
    name = out.name
    _check_spec(spec, name)
    item_columns = _item_columns(spec) if spec.items is not None else []
    owned = {f"{name}.{kind}" for kind in WRITTEN}

    def guard() -> None:
        if refusal := replace_refusal(out, owned.__contains__, "the import"):
            raise DataError(f"{refusal}; give a new or empty folder, or one an earlier import wrote", out)

    origins: dict[str, _Origin] = {}  # written file name -> where its rows came from
    by_id = spec.kg is not None and spec.links is None  # link items to the KG entities of their ids
    items: dict[str, None] = {}  # with by_id: each item id of the interactions, in order
    catalogue: dict[str, None] = {}  # ... and of the item file
    entities: dict[str, None] = {}  # ... and each KG head and tail
    linked_note = ""
    with atomic_dir(out, guard) as tmp:
        inter_columns = [(spec.user_col, "user_id:token"), (spec.item_col, "item_id:token")]
        if spec.rating_col:
            inter_columns.append((spec.rating_col, "rating:float"))
        if spec.label_col:
            inter_columns.append((spec.label_col, "label:float"))
        if spec.time_col:
            inter_columns.append((spec.time_col, "timestamp:float"))
        collect_items = {"item_id:token": items} if by_id else None
        origins[f"{name}.inter"] = _convert(spec.interactions, tmp / f"{name}.inter", inter_columns, spec,
                                            required=True, collect=collect_items)  # fmt: skip

        if spec.items is not None:
            origins[f"{name}.item"] = _convert(spec.items, tmp / f"{name}.item", item_columns, spec,
                                               collect={"item_id:token": catalogue} if by_id else None)  # fmt: skip
        if spec.kg is not None:
            kg_columns = [(spec.head_col, "head_id:token"), (spec.relation_col, "relation_id:token"),
                          (spec.tail_col, "tail_id:token")]  # fmt: skip
            collect_entities = {"head_id:token": entities, "tail_id:token": entities} if by_id else None
            origins[f"{name}.kg"] = _convert(spec.kg, tmp / f"{name}.kg", kg_columns, spec, required=True,
                                             collect=collect_entities)  # fmt: skip
        if spec.links is not None:
            link_columns = [(spec.link_item_col, "item_id:token"), (spec.entity_col, "entity_id:token")]
            origins[f"{name}.link"] = _convert(spec.links, tmp / f"{name}.link", link_columns, spec, required=True)
        if by_id:
            # the loader's order of items: the item file's, then the interactions' others
            linked_note = _links_by_id(spec, {**catalogue, **items}, entities, tmp / f"{name}.link")
        loaded = _check_loads(tmp, name, origins)
    if linked_note:
        spec.note(linked_note)
    inter = loaded.interactions()
    if spec.time_col and spec.time_unit == "s" and len(inter) and (hint := seconds_hint(float(inter.timestamp.max()))):
        spec.note(f"{spec.interactions}: column {spec.time_col!r}: {hint}; import with --time-unit ms (or us, ns) "
                  "if it counts milliseconds (micro-, nanoseconds)")  # fmt: skip
    negatives = sum(loaded.negative_counts().values())
    rows, kept = len(origins[f"{name}.inter"].lines), len(inter) + negatives
    if kept < rows:  # the loader's rule (duplicates="last"): the rows it drops are counted, not lost unseen
        repeat = "repeats" if rows - kept == 1 else "repeat"
        latest = "latest of each (by time, then by line)" if spec.time_col else "last of each"
        clicked = ", or label 0 a pair another row labels 1 (the click wins)" if spec.label_col else ""
        spec.note(f"{spec.interactions}: {rows - kept:,} of its {rows:,} rows {repeat} a (user, item) pair{clicked}; "
                  f"only the {latest} is {'kept' if spec.label_col else 'an interaction'}")  # fmt: skip
    renamed = [f"{column!r} as {header.split(':')[0]}" for column, header in item_columns[1:] if field_name(column) != column]
    if renamed:
        spec.note(f"wrote item column{'s' if len(renamed) > 1 else ''} {', '.join(renamed)} (lower case, '_' for "
                  "other characters): the names a text template or config uses")  # fmt: skip
    return replace(loaded, path=out, sources=[out / source.name for source in loaded.sources])  # read in tmp, now at out


def field_name(column: str) -> str:
    """The name a CSV item column gets in the ``.item`` file: lower case, each run of characters
    other than letters, digits and ``_`` as one ``_``, none at either end (``Movie Title`` ->
    ``movie_title``, ``Title`` -> ``title``), ``_`` first when it would start with a digit: a
    name a text template can hold (``{movie_title}``). ``""`` when nothing is left."""
    name = re.sub(r"\W+", "_", column.lower()).strip("_")
    return f"_{name}" if name[:1].isdigit() else name


def _item_columns(spec: ImportSpec) -> list[tuple[str, str]]:
    """``(csv name, atomic header)`` of the item file's columns: the id, then ``--text-cols``
    as ``token`` and ``--seq-cols`` as ``token_seq``, named by :func:`field_name`. Refuses a
    column given twice and two columns (or a column and the id) that would get one name."""
    columns = [(spec.item_col, "item_id:token")]
    columns += [(c, f"{field_name(c)}:token") for c in spec.text_cols]
    columns += [(c, f"{field_name(c)}:token_seq") for c in spec.seq_cols]
    taken: dict[str, str] = {}  # atomic name -> csv name
    for column, header in columns:
        name = header.split(":")[0]
        if not name:
            raise DataError(f"column {column!r} has no letter or digit to name it by in the .item file; rename it", spec.items, 1)
        if name in taken:
            raise DataError(_clash(taken[name], column, name, spec), spec.items, 1)
        taken[name] = column
    return columns


def _clash(first: str, second: str, name: str, spec: ImportSpec) -> str:
    """Why ``first`` and ``second`` cannot both be item columns: one name ``name`` for both."""
    if first == second:
        return f"column {first!r} is given twice in --text-cols/--seq-cols: expected each column once"
    if first == spec.item_col:
        return (f"column {second!r} would be written as {name}, the name of the item ids (column {first!r}): "
                "rename it, or leave it out of --text-cols/--seq-cols")  # fmt: skip
    return (f"columns {first!r} and {second!r} would both be written as {name} (lower case, '_' for other "
            "characters): rename one, or leave one out of --text-cols/--seq-cols")  # fmt: skip


def _check_spec(spec: ImportSpec, name: str) -> None:
    """Refuse files that would be written unused (``--links`` without ``--kg``), and ``--items``
    whose columns would all be dropped (no ``--text-cols`` or ``--seq-cols``): the refusal
    suggests the columns (:func:`_suggest_item_columns`). ``--kg`` without ``--links`` is
    checked once the files are read (:func:`_links_by_id`)."""
    _check_distinct(spec.interactions, [("--user-col", spec.user_col), ("--item-col", spec.item_col),
                                        ("--rating-col", spec.rating_col), ("--label-col", spec.label_col),
                                        ("--time-col", spec.time_col)])  # fmt: skip
    if spec.kg is not None:
        _check_distinct(spec.kg, [("--head-col", spec.head_col), ("--relation-col", spec.relation_col), ("--tail-col", spec.tail_col)])
    if spec.links is not None:
        _check_distinct(spec.links, [("--link-item-col", spec.link_item_col), ("--entity-col", spec.entity_col)])
    if spec.links is not None and spec.kg is None:
        raise DataError("--links needs --kg: the links join KG triples to items, and nothing else reads them", spec.links)
    if spec.time_unit not in TIME_UNITS:
        raise DataError(f"--time-unit {spec.time_unit!r}: expected one of {', '.join(TIME_UNITS)}", spec.interactions)
    if spec.sep is not None and not spec.sep:
        raise DataError("--sep is empty: expected the field separator, e.g. ',', ';', tab or '::'")
    if not spec.seq_sep:
        raise DataError("--seq-sep is empty: expected the separator between the values of a --seq-cols column, "
                        "e.g. '|'", spec.items)  # fmt: skip
    if spec.items is None or spec.text_cols or spec.seq_cols:
        return
    header = _header(next(_records(spec.items, spec.sep), (1, []))[1])
    if _separator_hint(header):
        return  # one field, whose separator converting names
    hint = _missing_hint({spec.item_col: "--item-col"}, spec, spec.items)
    # also checks the file reads, and has the item id column (else that column would be suggested as text)
    sample = [row for _, row in itertools.islice(_rows(spec.items, spec.sep, [spec.item_col], hint), SAMPLE_ROWS)]
    others = [c for c in header if c != spec.item_col]
    if not others:
        return  # ids alone: items beyond the interactions
    raise DataError(
        f"give --text-cols and/or --seq-cols to choose its item columns (the header has: {', '.join(header)}), "
        f"e.g. {_suggest_item_columns(others, sample, spec.seq_sep, len(sample) == SAMPLE_ROWS)}; "
        f"without them {name}.item would hold the item ids alone",
        spec.items,
    )


SAMPLE_ROWS = 1000  # the item rows read to suggest --text-cols / --seq-cols
SHORT_WORDS = 3  # a value of this many words or fewer, on average, is short: a category, a brand, a tag
SHARED = 0.5  # short values with at most this many distinct values per row are attributes (--seq-cols): "half"


def _suggest_item_columns(columns: list[str], sample: list[dict[str, str]], seq_sep: str, first: bool) -> str:
    """``--text-cols ... --seq-cols ...`` for ``columns`` of the item rows ``sample`` (the file's
    first rows when ``first``), with the rule that chose them: lists (values holding ``seq_sep``,
    else ``,``) and short values that many items share are attributes, ``--seq-cols``; the rest
    is free text, ``--text-cols``."""
    kinds = {c: _column_kind([(row[c] or "").strip() for row in sample], seq_sep) for c in columns}
    comma = "sep" not in kinds.values() and "comma" in kinds.values() and seq_sep != ","
    if not comma:  # one --seq-sep for every column: a list split on ',' beside one split on seq_sep is judged whole
        kinds = {c: kind if kind != "comma" else _column_kind([(row[c] or "").strip() for row in sample], seq_sep, False)
                 for c, kind in kinds.items()}  # fmt: skip
    text = [c for c, kind in kinds.items() if kind == "text"]
    seq = [c for c in columns if c not in text]
    options = [(flag, cols) for flag, cols in (("--text-cols", text), ("--seq-cols", seq)) if cols]
    example = " ".join(f"{flag} {shlex.quote(','.join(cols))}" for flag, cols in options)
    lists = f"'{seq_sep}'" + (" or ','" if comma else "")
    if comma:
        example += " --seq-sep ','"
    rows = f"its first {len(sample):,} rows" if first else "its values"
    return (f"{example} (a guess from {rows}: --seq-cols for lists split on {lists} and for short values that "
            f"items share ({SHORT_WORDS} words or fewer, at most half as many distinct values as rows), such as a "
            "category, a brand or tags, which become item attributes; --text-cols for free text such as a title "
            "or a description)")  # fmt: skip


def _column_kind(values: list[str], seq_sep: str, lists: bool = True) -> str:
    """How :func:`_suggest_item_columns` reads a column of ``values``: ``sep`` (a list split on
    ``seq_sep``), ``comma`` (a list of short values split on ``,``; with ``lists`` alone),
    ``shared`` (short values that repeat) or ``text``."""
    values = [v for v in values if v]
    if not values:
        return "text"
    if any(seq_sep in v for v in values):
        return "sep"
    parts = [p.strip() for v in values for p in v.split(",") if p.strip()]
    if lists and any("," in v for v in values) and _shared(parts):
        return "comma"
    return "shared" if _shared(values) else "text"


def _shared(values: list[str]) -> bool:
    """Whether ``values`` are short (:data:`SHORT_WORDS` words or fewer, on average) and repeat
    (at most :data:`SHARED` as many distinct values as values)."""
    return bool(values) and sum(len(v.split()) for v in values) <= SHORT_WORDS * len(values) and (
        len(set(values)) <= SHARED * len(values)
    )


def _links_by_id(spec: ImportSpec, items: dict[str, None], entities: dict[str, None], target: Path) -> str:
    """``--kg`` without ``--links``: write ``target``, the ``.link`` file linking each item to
    the KG entity of the same id (exact match), and return the note that says so; refuse when no
    item id is a KG entity (nothing would join the triples to the items)."""
    linked = [item for item in items if item in entities]
    if not linked:
        raise DataError(
            f"--kg needs --links to join the triples to items: no item id is a head or tail of the KG (items "
            f"{some_names(list(items))}; KG entities {some_names(list(entities))}), so no item is linked to the "
            "entity of its own id; give --links FILE (a row per item: its id and its KG entity; columns item_id, "
            "entity_id, or name them with --link-item-col, --entity-col), or write the triples with the item ids "
            "as heads or tails",
            spec.kg,
        )
    with open(target, "w", encoding="utf-8", newline="\n") as out:
        out.write("item_id:token\tentity_id:token\n")
        out.writelines(f"{item}\t{item}\n" for item in linked)
    unlinked = [item for item in items if item not in entities]
    rest = (f"; {len(unlinked):,} item{'s have' if len(unlinked) > 1 else ' has'} no KG entity of {'their' if len(unlinked) > 1 else 'its'} id "
            f"({some_names(unlinked)}) and no KG triple" if unlinked else "")  # fmt: skip
    numbers = (" (these ids are numbers: if the KG numbers its entities on its own, they match the items by chance)"
               if all(item.isdigit() for item in linked) else "")  # fmt: skip
    return (f"{spec.kg}: no --links, so each item is linked to the KG entity of the same id: {len(linked):,} of the "
            f"{len(items):,} items{rest}; give --links FILE to link items to other entities{numbers}")  # fmt: skip


def _check_distinct(path: Path, options: list[tuple[str, str | None]]) -> None:
    """Refuse two options that name one column of ``path``: a user id read as the item id too,
    or a rating as a timestamp, would import without a word."""
    seen: dict[str, str] = {}
    for option, column in (pair for pair in options if pair[1] is not None):
        if column in seen:
            raise DataError(f"{seen[column]} and {option} both name column {column!r}; expected a column each", path)
        seen[column] = option


@dataclass
class _Origin:
    """The CSV file an atomic file was converted from: its column names by atomic header, and
    the CSV line of each written row (row ``r`` is line ``r + 2`` of the atomic file)."""

    source: Path
    columns: dict[str, str]
    lines: Sequence[int]


def _check_loads(folder: Path, name: str, origins: dict[str, _Origin]) -> Dataset:
    """Load the converted files as a dataset and return it; a problem is raised at its CSV file,
    line, column. A :class:`~kgrec.errors.DataWarning` the loader gives (rows with label 0)
    names the CSV file the rows came from, not the temporary folder."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            loaded = load_dataset(folder, name=name)
        for warning in caught:  # said again, at the CSV file
            message = str(warning.message)
            for written, origin in origins.items():
                message = message.replace(str(folder / written), str(origin.source))
            warnings.warn(message, warning.category, stacklevel=2)
        return loaded
    except DataError as error:
        origin = origins.get(error.path.name) if error.path is not None else None
        if origin is None:
            raise

        def source_line(line: int | None) -> int | None:
            if line is not None and 2 <= line < len(origin.lines) + 2:
                return origin.lines[line - 2]
            return line if line == 1 else None

        line = source_line(error.line)
        column = origin.columns.get(error.column, error.column) if error.column is not None else None
        if isinstance(error, DisjointIdsError):
            raise error.at(lambda side: _at_source(side, origins)) from None
        if isinstance(error, RepeatedIdError):  # its first line too, in the message
            first = source_line(error.first_line)
            if first is not None and line is not None and column is not None:
                raise RepeatedIdError(error.token, first, origin.source, line, column) from None
        raise DataError(error.message, origin.source, line, column) from None


def _at_source(side: IdSide, origins: dict[str, _Origin]) -> IdSide:
    """``side`` of a :class:`DisjointIdsError` moved to the CSV file and columns it came from."""
    origin = origins.get(side.path.name)
    if origin is None:
        return side
    return replace(side, path=origin.source, columns=tuple(origin.columns.get(c, c) for c in side.columns))


def write_tsv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    """Write ``rows`` under ``header`` as a tab-separated file :func:`import_csv` reads; for
    scripts that convert a published format (``scripts/prepare_*.py``) through the importer."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _separator_hint(header: list[str]) -> str:
    """When the whole header came out as one field holding another common separator, name it."""
    if len(header) != 1:
        return ""
    for sep, shown in (("::", "'::'"), (";", "';'"), ("\t", "tab"), (",", "','"), ("|", "'|'")):
        if sep in header[0]:
            return f" (one field: is the separator {shown}? give --sep {shown})"
    return ""


def _delimiter(path: Path, sep: str | None) -> str:
    if sep is not None:
        return "\t" if sep in ("\\t", "tab") else sep
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def _rows(
    path: Path, sep: str | None, read: Sequence[str] = (), hint: Callable[[list[str], list[str]], str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` of each data row of a CSV file, ``row`` by header name (names stripped of
    surrounding spaces, as values are); blank lines, and lines of spaces alone, are skipped. A
    column in ``read`` that the header lacks, or names twice, is refused (also in a file of a
    header alone): which one is meant is unclear. ``hint(header, missing)`` ends the refusal of
    missing columns: the options that name them (:func:`_missing_hint`)."""
    records = _records(path, sep)
    first = next(records, None)
    if first is None:
        raise DataError("empty file: expected a header row naming the columns", path, line=1)
    if not first[1]:
        raise DataError("blank line: expected a header row naming the columns", path, line=first[0])
    header = _header(first[1])
    missing = [column for column in read if column not in header]
    if missing:
        said = _separator_hint(header)
        raise DataError(f"missing column(s) {', '.join(missing)}; the header has: {', '.join(header)}"
                        + (said or (hint(header, missing) if hint is not None else "")), path, 1)  # fmt: skip
    for column in read:
        fields = [number for number, name in enumerate(header, start=1) if name == column]
        if len(fields) > 1:
            raise DataError(
                f"the header names this column {len(fields)} times (fields {', '.join(map(str, fields[:-1]))} and "
                f"{fields[-1]}): expected each column once; rename the others",
                path,
                1,
                column,
            )
    for line, fields in records:
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != len(header):
            more = "more" if len(fields) > len(header) else "fewer"
            raise DataError(f"{more} fields than the {len(header)} header columns", path, line)
        yield line, dict(zip(header, fields, strict=True))


def _header(fields: list[str]) -> list[str]:
    """The column names of a header record: stripped of surrounding spaces, as values are
    (``userId, movieId`` names ``movieId``)."""
    return [name.strip() for name in fields]


def _records(path: Path, sep: str | None) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` of each record of a CSV file (the line it starts on), the header first,
    ``[]`` for a blank line: read as CSV for a one-character separator, else each line split on
    the separator (no quoting)."""
    if not path.is_file():
        raise DataError("file not found", path)
    delimiter = _delimiter(path, sep)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        limit = csv.field_size_limit(FIELD_MAX)  # restored below: other readers in this process keep theirs
        try:
            if len(delimiter) == 1:
                # spaces after a comma are not part of the field (`1, "a"` is 1 and a); values are stripped anyway
                reader = csv.reader(handle, delimiter=delimiter, strict=True, skipinitialspace=delimiter not in " \t")
                end = 0  # the line the record before ended on: a quoted field may hold line breaks
                for fields in reader:
                    yield end + 1, fields
                    end = reader.line_num
                return
            for number, text in enumerate(handle, start=1):
                text = text.rstrip("\r\n")
                yield number, text.split(delimiter) if text else []
        except csv.Error as exc:
            if reader.line_num > end + 1 and ("end of data" in str(exc) or "field limit" in str(exc)):
                # a quote that never closes took in the lines after it: name the line it opened on
                raise DataError(f"malformed CSV: {exc}: a quote opened on this line is not closed (read to line "
                                f"{reader.line_num:,})", path, end + 1) from None  # fmt: skip
            raise DataError(f"malformed CSV: {exc}", path, reader.line_num) from None
        except UnicodeDecodeError as exc:
            line, byte = _first_bad_utf8(path)
            where = f" at byte {byte} of the line" if byte else ""
            raise DataError(f"not valid UTF-8{where} ({exc.reason}): expected UTF-8 text; save the file as UTF-8",
                            path, line) from None  # fmt: skip
        finally:
            csv.field_size_limit(limit)


def _first_bad_utf8(path: Path) -> tuple[int | None, int | None]:
    """1-based line of the first bytes that are not UTF-8, and the 1-based byte in that line
    (a line break is never part of a UTF-8 sequence, so lines decode on their own)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, exc.start + 1
    return None, None


_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?$")
_FRACTION = re.compile(r"\.\d+")  # of a second: the only '.' in :data:`_ISO_TIME`'s form


def _iso_seconds(text: str) -> float:
    """Unix seconds of an ISO 8601 date or date-time in :data:`_ISO_TIME`'s form (UTC when it
    gives no offset). Raises ValueError for an impossible date or time (``2020-02-31``)."""
    fraction = _FRACTION.search(text)  # any number of digits (Python 3.10 reads only 3 or 6)
    if fraction is not None:
        text = text[: fraction.start()] + text[fraction.end() :]
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)  # Z: Python 3.10 too
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp() + (float("0" + fraction.group()) if fraction is not None else 0.0)


def _convert(
    source: Path,
    target: Path,
    columns: list[tuple[str, str]],
    spec: ImportSpec,
    required: bool = False,
    collect: dict[str, dict[str, None]] | None = None,
) -> _Origin:
    """Copy ``columns`` (csv name, atomic header) of ``source`` into atomic file ``target``;
    ``collect`` gathers the values written under some atomic headers (a dict: in order, once)."""
    seq_sep = spec.seq_sep
    unit = TIME_UNITS[spec.time_unit]
    # per column, worked out once: (csv name, atomic type, a timestamp, an id)
    plan = [(column, header.split(":")[1], header.startswith("timestamp:"), header.endswith("_id:token"))
            for column, header in columns]  # fmt: skip
    wanted = collect or {}
    gather = [(n, wanted[header]) for n, (_, header) in enumerate(columns) if header in wanted]  # (field, its dict)
    hint = _missing_hint(_flags(spec, source, columns), spec, source)
    lines = array("q")  # 8 bytes a row (a list of ints took 36): ML-25M's 25M rows in 200 MB, not 900
    with open(target, "w", encoding="utf-8", newline="\n") as out:
        out.write("\t".join(header for _, header in columns) + "\n")
        for line, row in _rows(source, spec.sep, [c for c, _ in columns], hint):
            fields = []
            for column, kind, is_time, is_id in plan:
                value = (row[column] or "").strip()
                if kind == "float":
                    if not value:
                        raise DataError("empty: expected a number", source, line, column)
                    if is_time and _ISO_TIME.match(value):
                        try:
                            number = _iso_seconds(value)
                        except ValueError as error:  # the form of a date, not a real one
                            raise DataError(f"'{value}' is not a valid date or time ({error})", source, line, column) from None
                    else:
                        try:
                            number = float(value) / (unit if is_time else 1)
                        except ValueError:
                            expected = " (Unix seconds) or an ISO 8601 date or time such as 2020-01-31 or 2020-01-31T12:30:00"
                            raise DataError(
                                f"'{value}' is not a number" + (expected if is_time else ""), source, line, column
                            ) from None
                    if not math.isfinite(number):
                        raise DataError(f"'{value}' is not a finite number", source, line, column)
                    fields.append(repr(number))  # what Python reads ('1_000', full-width digits), in a form every reader reads
                    continue
                if kind == "token_seq":
                    # any space inside a value, a tab or line break too, is '_': token_seq splits on spaces
                    value = " ".join(_BLANK.sub("_", v.strip()) for v in value.split(seq_sep) if v.strip())
                elif is_id and not value:
                    raise DataError("empty id: expected a value", source, line, column)
                elif is_id and _BREAK.search(value):
                    # as a space it would merge '1<tab>2' with '1 2', another id
                    raise DataError(
                        f"id {value!r} holds a tab or line break, which atomic files cannot hold: "
                        "expected an id on one line without tabs",
                        source,
                        line,
                        column,
                    )
                elif _BREAK.search(value):  # a text value: each tab or line break (CRLF too) one space
                    value = _BREAKS.sub(" ", value)
                fields.append(value)
            out.write("\t".join(fields) + "\n")
            lines.append(line)
            for n, seen in gather:
                seen[fields[n]] = None
    if required and not lines:
        raise DataError("no rows: expected at least one row after the header", source, line=1)
    return _Origin(source, {header: column for column, header in columns}, lines)


def _flags(spec: ImportSpec, source: Path, columns: list[tuple[str, str]]) -> dict[str, str]:
    """The option that names each CSV column of ``columns`` (read from ``source``)."""
    by_header = {"user_id:token": "--user-col", "rating:float": "--rating-col", "timestamp:float": "--time-col",
                 "head_id:token": "--head-col", "relation_id:token": "--relation-col", "tail_id:token": "--tail-col",
                 "entity_id:token": "--entity-col"}  # fmt: skip
    links = source == spec.links and source != spec.interactions
    flags = {}
    for column, header in columns:
        if header == "item_id:token":
            flags[column] = "--link-item-col" if links else "--item-col"
        elif header in by_header:
            flags[column] = by_header[header]
        else:
            flags[column] = "--text-cols" if header.endswith(":token") else "--seq-cols"
    return flags


#: Words that an id column's name holds (``customer_id``, ``productId``), by the option that names it.
ID_WORDS = {
    "--user-col": ("user", "customer", "client", "member"),
    "--item-col": ("item", "product", "movie", "book", "article"),
    "--link-item-col": ("item", "product", "movie", "book", "article"),
    "--entity-col": ("entity", "wikidata", "freebase"),
}
#: The first word of a KG column's name (``subject``, ``head_id``), by the option that names it.
KG_WORDS = {
    "--head-col": ("head", "subject", "source", "src", "from", "h", "s"),
    "--relation-col": ("relation", "predicate", "property", "rel", "edge", "r", "p"),
    "--tail-col": ("tail", "object", "target", "dst", "to", "t", "o"),
}


def _guess(flag: str, header: list[str], taken: set[str]) -> str | None:
    """The column of ``header`` (none of ``taken``) that ``flag`` likely means: an id column named
    for its kind (:data:`ID_WORDS`: ``customer_id`` or ``customer`` for ``--user-col``), a KG
    column by its first word (:data:`KG_WORDS`: ``subject``); ``None`` when no column, or more
    than one, fits."""
    fits = []
    for column in (c for c in header if c not in taken):
        lower = column.lower()
        first = re.findall(r"[a-z]+", lower)[:1]
        if flag in ID_WORDS:
            words = ID_WORDS[flag]
            bare = re.sub(r"[\W_]*ids?$", "", lower).rstrip("s")
            if any(word in lower for word in words) and (lower.endswith(("id", "ids")) or bare in words):
                fits.append(column)
        elif flag in KG_WORDS and first and first[0] in KG_WORDS[flag]:
            fits.append(column)
    return fits[0] if len(fits) == 1 else None


def _missing_hint(flags: dict[str, str], spec: ImportSpec, path: Path | None) -> Callable[[list[str], list[str]], str]:
    """``hint(header, missing)`` for :func:`_rows`: the options that name the ``missing`` columns
    of ``path``, with a guess from ``header`` where one fits (``; name them with --user-col and
    --item-col (the header suggests --user-col customer_id --item-col product_id)``); a column
    the user named (``--text-cols``, ``--rating-col`` ...) gets the header's closest name."""
    items_file = path == spec.items and path != spec.interactions  # --item-col names its id column too

    def hint(header: list[str], missing: list[str]) -> str:
        taken = set(flags) & set(header)  # columns that other options name
        said: list[str] = []
        options: list[str] = []
        guesses: list[str] = []
        for column in (c for c in missing if c in flags):
            flag = flags[column]
            if flag == "--item-col" and items_file:
                guess = _guess(flag, header, taken) or next((c for c in header if c.lower() == "id"), None)
                fix = f"rename this file's column {guess!r} to {column!r}" if guess else f"give this file a column {column!r}"
                said.append(f"--item-col names the item id column of both the interactions and the items file: {fix}")
            elif flag in ID_WORDS or flag in KG_WORDS:
                options.append(flag)
                if (guess := _guess(flag, header, taken)) is not None:
                    taken.add(guess)
                    guesses.append(f"{flag} {shlex.quote(guess)}")
            else:
                close = [c for c in header if c.lower() == column.lower()] or difflib.get_close_matches(column, header, n=1)
                said.append(f"{flag} gave {column!r}" + (f": did you mean {close[0]!r}?" if close else ""))
        if options:
            suggests = f" (the header suggests {' '.join(guesses)})" if guesses else ""
            said.insert(0, f"name {'it' if len(options) == 1 else 'them'} with {_and(options)}{suggests}")
        return "; " + "; ".join(said) if said else ""

    return hint


def _and(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


_BREAK = re.compile(r"[\t\r\n]")  # what an atomic file's value cannot hold
_BREAKS = re.compile(r"\r\n|[\t\r\n]")  # ... each one, a CRLF counted as one line break
_BLANK = re.compile(r"\r\n|[ \t\r\n]")  # a space, tab or line break in a token_seq value
