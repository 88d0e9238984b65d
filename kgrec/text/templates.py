"""Item rows as text: a :meth:`str.format` template over the item columns.

``{column}`` renders a ``token`` as itself, a ``token_seq`` joined with ``", "`` (text-like
columns such as titles joined with ``" "``), a ``float`` without a needless ``.0`` and with
every digit it was written with (``24999.95``). A format spec on a ``float`` / ``float_seq``
column formats the numbers (``{price:.2f}``, ``{year:d}``). ``{item_id}`` is the raw item
token. A template that names no column is refused (every item would get one text). A missing
value (empty token, NaN, empty list) renders as nothing, and the text around it is tidied:
empty brackets and a label left without a value (``"Genres:"``) are dropped, so
``"{movie_title} ({release_year}). Genres: {class}"`` gives
``"Toy Story (1995). Genres: Animation, Children's, Comedy"``, ``"Toy Story. Genres: ..."``
without a year and ``"Toy Story (1995)"`` without genres. An item whose text comes out empty
is written as its raw id.
"""

from __future__ import annotations

import math
import re
import string

import numpy as np

from kgrec.data.atomic import TokenColumn
from kgrec.data.dataset import Dataset, is_text_column
from kgrec.errors import ConfigError
from kgrec.text.config import TextConfig
from kgrec.utils.names import closest

ITEM_ID = "item_id"
LABELS = {"class": "Genres", "genre": "Genres", "genres": "Genres", "tag": "Tags", "tags": "Tags"}

_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")
# A short "Label: " ending a literal, where the literal starts or after a separator: "). Genres: " -> ")."
_LABEL_AT_END = re.compile(r"(?:^|(?<=[.;!?|)\]]))[^.;:!?|()\[\]]{0,40}:\s*$")
_REPEATED_SEPARATOR = re.compile(r"([.;,!?|])(?:\s+[.;,|])+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?)\]])")
_SENTENCE_ENDS = (".", "!", "?")
# A present value's stand-in while the template's own text is tidied, with the full stop after it
_SLOT = re.compile(r"\x00(\d+)\x00(\.?)")


def item_texts(dataset: Dataset, config: TextConfig | None = None) -> list[str]:
    """One text per item of ``dataset``, aligned with ``dataset.items``.

    Args:
        dataset: the loaded dataset; its item columns fill the template.
        config: ``config.template`` is used, or :func:`default_template` when it is ``None``.

    Raises:
        ConfigError: the template is malformed or names a column the dataset lacks (the
            message lists the available ones).
    """
    template = (config.template if config is not None else None) or default_template(dataset)
    fields = template_fields(template, available=_available(dataset))
    if not fields:  # e.g. "title" for "{title}": every item would get one text, so one vector
        raise ConfigError(
            f"text template {template!r} names no column, so every item would get the same text and the same "
            f"text vector: write columns in braces, e.g. '{{{_example_field(dataset, template)}}}'"
        )
    columns = {name: _render_column(dataset, name) for name in fields}
    without: dict[frozenset[str], str] = {}  # the template without the labels of these missing fields
    texts = []
    for row, token in enumerate(dataset.items):
        values = {name: columns[name][row] for name in fields}
        missing = frozenset(name for name, value in values.items() if not value)
        if missing and missing not in without:
            without[missing] = _drop_labels(template, missing)
        try:
            text = _fill(without[missing], values, missing) if missing else template.format_map(values)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"text template {template!r} cannot be rendered: {_which_field(template, values, error)}") from None
        texts.append(text or str(token))
    return texts


def _fill(template: str, values: dict[str, str], missing: frozenset[str]) -> str:
    """``template`` filled with ``values``, tidied (:func:`_tidy`) around the ``missing`` ones.

    Only the template's own text is tidied: each present value is kept whole (tidying the
    rendered text stripped ``"Monsters, Inc."`` to ``"Monsters, Inc"``, ``"...And Justice for
    All"`` to ``"And Justice for All"`` and dropped a ``"( )"`` of a title); a full stop of the
    template right after a value that ends a sentence is dropped (``"Monsters, Inc. Genres: ..."``).
    """
    formatter = string.Formatter()
    pieces: list[str] = []
    present: list[str] = []
    for literal, name, spec, conversion in formatter.parse(template):
        pieces.append(literal)
        if name is None:
            continue
        text = format(formatter.convert_field(values[name], conversion), spec)
        if name in missing:
            pieces.append(text)
        else:
            pieces.append(f"\x00{len(present)}\x00")
            present.append(text)

    def put(slot: re.Match[str]) -> str:
        value = present[int(slot[1])]
        return value if value.endswith(_SENTENCE_ENDS) else value + slot[2]

    return _SLOT.sub(put, _tidy("".join(pieces)))


def _drop_labels(template: str, fields: frozenset[str]) -> str:
    """``template`` with the label right before each of ``fields`` removed: the literal text
    before ``{field}`` loses a trailing ``"Label: "`` (``"). Genres: {class}"`` -> ``").{class}"``),
    and nothing else of the template is touched."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        literal = literal.replace("{", "{{").replace("}", "}}")
        if name is None:
            out.append(literal)
            continue
        if name in fields:
            literal = _LABEL_AT_END.sub("", literal)
        out.append(literal + "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}")
    return "".join(out)


def _example_field(dataset: Dataset, template: str) -> str:
    """A column to suggest for a template naming none: one the template spells without braces,
    else the title column, else the first column."""
    names = _available(dataset)
    return next((w for w in re.findall(r"\w+", template) if w in names), None) or dataset.title_column() or names[0]


def _which_field(template: str, values: dict[str, str], error: Exception) -> str:
    """``error`` of rendering ``template``, naming the field whose format spec does not fit its
    column (``{release_year:d}`` on a text column said only "Unknown format code 'd' for object
    of type 'str'")."""
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None or conversion or not spec:
            continue
        try:
            format(values[name], spec)
        except (ValueError, TypeError) as field_error:
            kind = "numbers" if isinstance(values[name], _Numbers) else "text"
            return f"{{{name}:{spec}}}: column '{name}' holds {kind} ({values[name]!r}): {field_error}"
    return str(error)


def default_template(dataset: Dataset) -> str:
    """The template used when none is configured, built from the dataset's item columns.

    The title column first, a year column in brackets after it, then every other ``token`` /
    ``token_seq`` column as ``"Label: {column}"`` (``class`` / ``genre`` read as ``Genres``),
    joined with ``". "``; id-like columns (``*_id``) are left out. ml-100k gives
    ``"{movie_title} ({release_year}). Genres: {class}"``. With no usable column: ``"{item_id}"``.
    """
    title = dataset.title_column()
    columns = [
        name
        for name, kind in dataset.item_feature_types.items()
        if kind in ("token", "token_seq") and name != title and name.isidentifier()
        and name != ITEM_ID and not name.endswith("_id")
    ]  # fmt: skip
    year = next((c for c in columns if "year" in c.lower()), None) if title else None
    parts = []
    if title:
        parts.append(f"{{{title}}}" + (f" ({{{year}}})" if year else ""))
    parts += [
        f"{LABELS.get(c.lower(), c.replace('_', ' ').capitalize())}: {{{c}}}" for c in columns if c != year
    ]
    return ". ".join(parts) or f"{{{ITEM_ID}}}"


def template_fields(template: str, available: list[str]) -> list[str]:
    """The distinct column names ``template`` uses, checked against ``available``.

    Raises:
        ConfigError: malformed template, positional or dotted/indexed field, or unknown column.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ConfigError(f"text template {template!r} is malformed: {error}") from None
    fields: list[str] = []
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if spec and "{" in spec:
            raise ConfigError(f"text template {template!r}: nested fields are not supported")
        if name == "" or name.isdigit():
            raise ConfigError(f"text template {template!r}: fields must name a column, e.g. {{movie_title}}")
        if "." in name or "[" in name:  # any other name str.format reads as a key: {release-date}
            raise ConfigError(
                f"text template {template!r}: field {{{name}}} must be a plain column name "
                "(no attribute or index access)"
            )
        if name not in available:
            raise ConfigError(
                f"text template refers to unknown column '{name}'{closest(name, available)}; available: {', '.join(available)}"
            )
        if name not in fields:
            fields.append(name)
    return fields


def _available(dataset: Dataset) -> list[str]:
    names = list(dataset.item_features)
    return names if ITEM_ID in names else [*names, ITEM_ID]


def _render_column(dataset: Dataset, name: str) -> list[str]:
    """Every item's value of column ``name`` as a string, '' where missing."""
    if name == ITEM_ID and name not in dataset.item_features:
        return [str(t) for t in dataset.items]
    column = dataset.item_features[name]
    if isinstance(column, TokenColumn):
        column = column.values()
    joiner = " " if is_text_column(name) else ", "
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":
        return [_Numbers([v], joiner) for v in column.tolist()]
    if isinstance(column, np.ndarray):
        return ["" if _missing(v) else str(v) for v in column.tolist()]
    out: list[str] = []
    for value in column:
        if isinstance(value, np.ndarray):  # float_seq
            out.append(_Numbers(value.tolist(), joiner))
            continue
        if isinstance(value, (list, tuple)):
            value = [str(v) for v in value if not _missing(v)]
        else:
            value = [] if _missing(value) else [str(value)]
        out.append(joiner.join(v for v in value if v))
    return out


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value == ""


def _number(value: float) -> str:
    """A number as text: an integer without ``.0``, any other in the shortest form that reads
    back as the same float (``24999.95``; ``:g`` kept 6 digits and wrote ``25000``)."""
    if value is None or math.isnan(value):
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


class _Numbers(str):
    """The value of a ``float`` / ``float_seq`` column in one row: it reads as its text (each
    number as :func:`_number` writes it, joined like a list, NaN left out), and a format spec in
    the template formats the numbers themselves: ``{price:.2f}`` gives ``24999.95``, ``{year:d}``
    takes a whole-number float (without, a spec met the text and was refused as one for
    ``str``)."""

    numbers: tuple[float, ...]
    joiner: str

    def __new__(cls, numbers: list[float], joiner: str) -> _Numbers:
        kept = tuple(float(v) for v in numbers if v is not None and not math.isnan(v))
        self = super().__new__(cls, joiner.join(_number(v) for v in kept))
        self.numbers, self.joiner = kept, joiner
        return self

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        # integer presentation types, or none and no precision: "{year:>6}" as "  1995", not "1995.0"
        whole = spec[-1:] in ("b", "d", "o", "x", "X") or not (_typed(spec) or re.search(r"\.\d", spec))
        try:
            return self.joiner.join(format(int(v) if whole and v.is_integer() else v, spec) for v in self.numbers)
        except ValueError:
            if spec[-1:] != "s":
                raise
            return format(str(self), spec)  # {price:>10s}: a text spec, as before


def _typed(spec: str) -> bool:
    """Whether format spec ``spec`` ends with a presentation type (``f``, ``%``); a fill
    character is always followed by an alignment, so a last letter is the type."""
    return spec[-1:].isalpha() or spec[-1:] == "%"


def _tidy(text: str) -> str:
    """Clean up what missing values leave behind: ``"()"``, ``" ."``, repeated separators."""
    text = _EMPTY_BRACKETS.sub("", text)
    text = re.sub(r"\s+", " ", text)
    text = _REPEATED_SEPARATOR.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return text.strip(" .,;:|")
