"""Graph recipes: which triples and item attributes make up a knowledge graph.

A recipe is a small YAML file (``graphs/NAME.yaml``) loaded into a typed :class:`GraphRecipe`.
Unknown keys and bad values, and columns the dataset lacks, are refused with a
:class:`~kgrec.errors.ConfigError` naming the file, the line and column of the key, and what
was expected. The recipe's sha256 (of its canonical JSON form) goes into
every built graph's manifest, so a graph always says exactly how it was made.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import string
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kgrec.data.dataset import is_text_column
from kgrec.errors import ConfigError
from kgrec.utils.config import load_yaml, locate
from kgrec.utils.names import closest, some_names

if TYPE_CHECKING:
    from kgrec.data import Dataset

Transform = Literal["none", "decade"]
TRANSFORMS = ("none", "decade")
INVERSE_SUFFIX = ".inv"
INTERACTED = "interacted"
ATTRIBUTE_TYPES = ("token", "token_seq", "float")


@dataclass(frozen=True)
class AttributeRelation:
    """An item column turned into a relation ``item -relation-> value``.

    Attributes:
        column: the item feature column (a ``token``, ``token_seq`` or ``float`` column of
            ``NAME.item``); a ``token_seq`` value gives one edge per token.
        relation: the relation's name, e.g. ``item.genre``.
        transform: ``none`` keeps the value as it is; ``decade`` maps a year to its decade
            (``1995`` -> ``1990s``); values that are not years are skipped.
    """

    column: str
    relation: str
    transform: Transform = "none"


@dataclass(frozen=True)
class GraphRecipe:
    """How to build a :class:`~kgrec.graph.KnowledgeGraph` from a dataset.

    Attributes:
        kg: use the dataset's ``NAME.kg`` triples, joined to items through ``NAME.link`` (a
            linked item's entity becomes the item's node).
        attributes: item columns turned into relations.
        inverse: also add, for every relation ``r``, the relation ``r.inv`` with each triple
            reversed.
        users: add a node per user and ``user -interacted-> item`` edges from the training
            split only (valid and test interactions never become edges).
        min_degree: drop non-item entities that have fewer distinct neighbours than this
            (counted once, over the KG and attribute triples, after the relation filters);
            item nodes are never dropped. ``0`` or ``1`` keeps every entity.
        allow: if not empty, keep only the KG and attribute relations matching one of these
            names or shell patterns (``film.film.*``).
        deny: drop the KG and attribute relations matching one of these names or patterns.
        item_name: how to name item nodes, a format string over item columns such as
            ``"{movie_title} ({release_year})"``; empty: the dataset's title column, else the
            raw item id. Items missing one of the columns fall back to the default.
    """

    kg: bool = True
    attributes: tuple[AttributeRelation, ...] = ()
    inverse: bool = False
    users: bool = False
    min_degree: int = 0
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    item_name: str = ""

    def __post_init__(self) -> None:
        relations = [a.relation for a in self.attributes]
        for i, attribute in enumerate(self.attributes):
            if attribute.transform not in TRANSFORMS:
                raise ConfigError(
                    f"attributes: transform '{attribute.transform}' of column '{attribute.column}': "
                    f"expected one of {', '.join(TRANSFORMS)}",
                    key=f"attributes[{i}].transform",
                )
            if not attribute.column or not attribute.relation:
                raise ConfigError("attributes: each entry needs a non-empty 'column' and 'relation'", key=f"attributes[{i}]")
            if attribute.relation.endswith(INVERSE_SUFFIX) or attribute.relation == INTERACTED:
                raise ConfigError(
                    f"attributes: relation name '{attribute.relation}' is reserved "
                    f"(names ending in '{INVERSE_SUFFIX}' and '{INTERACTED}' are made by the builder)",
                    key=f"attributes[{i}].relation",
                )
            if attribute.relation in relations[:i]:
                raise ConfigError(f"attributes: relation '{attribute.relation}' is defined twice", key=f"attributes[{i}].relation")
        if isinstance(self.min_degree, bool) or not isinstance(self.min_degree, int) or self.min_degree < 0:
            raise ConfigError(f"min_degree: {self.min_degree!r}: expected a non-negative integer", key="min_degree")
        for key in ("allow", "deny"):
            patterns = getattr(self, key)
            if not isinstance(patterns, (tuple, list)) or not all(isinstance(p, str) and p for p in patterns):
                # a string would be read one character at a time: allow "film.*" kept every relation ('*')
                raise ConfigError(f"{key}: {patterns!r}: expected a tuple of relation names or patterns", key=key)

    @property
    def makes_relations(self) -> bool:
        """Whether the recipe asks for any edges: KG triples, attribute columns or user nodes."""
        return self.kg or bool(self.attributes) or self.users

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain JSON-ready data (lists, not tuples)."""
        return json.loads(json.dumps(asdict(self)))

    def sha256(self) -> str:
        """sha256 of the canonical JSON form: equal recipes hash equal, whatever the YAML looked like."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> GraphRecipe:
    """Validate a mapping (as read from YAML) into a :class:`GraphRecipe`.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or an invalid value; the message
            starts with ``source``, ``error.key`` is the recipe key at fault (``attributes[0].column``).
    """
    try:
        return _recipe(data)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}", key=error.key) from None


def _recipe(data: dict[str, Any] | None) -> GraphRecipe:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of recipe keys, found {type(data).__name__}")
    allowed = {f.name for f in fields(GraphRecipe)}
    unknown = sorted(str(k) for k in data if k not in allowed)  # a key YAML reads as a number is no name either
    if unknown:
        raise ConfigError(
            f"unknown key '{unknown[0]}'{closest(unknown[0], allowed)} (expected one of: {', '.join(sorted(allowed))})",
            key=unknown[0],
        )
    values: dict[str, Any] = {}
    for key in ("kg", "inverse", "users"):
        if key in data:
            values[key] = _expect(key, data[key], bool, "true or false")
    if "min_degree" in data:
        value = data["min_degree"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"min_degree: {value!r}: expected a non-negative integer", key="min_degree")
        values["min_degree"] = value
    if "item_name" in data:
        item_name = data["item_name"]  # only nothing (null) is no name: 0 or false is no format string either
        values["item_name"] = "" if item_name is None else _expect("item_name", item_name, str, "a format string")
    for key in ("allow", "deny"):
        if key in data:
            values[key] = tuple(_string_list(key, data[key]))
    if "attributes" in data:
        values["attributes"] = tuple(_attributes(data["attributes"]))
    return GraphRecipe(**values)


def check_recipe(dataset: Dataset, recipe: GraphRecipe) -> list[str]:
    """Refuse a recipe that asks ``dataset`` for what it lacks: KG triples, an item column (with
    the closest one it has), a column of a type that makes no relation, an ``item_name`` field,
    or relations left by ``allow`` / ``deny`` (:func:`check_relation_filters`).

    Returns:
        Notes for the user: ``allow`` patterns that match no relation while others do.

    Raises:
        ConfigError: what is missing and what the dataset has; ``error.key`` is the recipe key.
    """
    name = dataset.name
    if recipe.kg and dataset.kg is None:
        columns = _multi_valued_columns(dataset)
        fix = (f"set kg: false and make its multi-valued item columns relations under attributes ({', '.join(columns)}), "
               "as the default recipe does" if columns else "set kg: false (with no attributes or users, the graph has no edges)")  # fmt: skip
        raise ConfigError(f"recipe uses KG triples (kg: true) but dataset '{name}' has no {name}.kg; {fix}", key="kg")
    columns = dataset.item_feature_types
    have = ", ".join(f"{c}:{t}" for c, t in columns.items()) or f"none: {name}.item is absent"
    kg_relations = {str(r) for r in dataset.relations} if recipe.kg and dataset.relations is not None else set()
    for i, attribute in enumerate(recipe.attributes):
        if attribute.relation in kg_relations and relation_allowed(attribute.relation, recipe):
            raise ConfigError(
                f"recipe attribute relation '{attribute.relation}' is defined twice (a KG relation of '{name}' and "
                "this attribute's); rename the attribute (a deny pattern would drop both)",
                key=f"attributes[{i}].relation",
            )
        kind = columns.get(attribute.column)
        if kind is None:
            raise ConfigError(
                f"recipe attribute column '{attribute.column}' is not an item column of '{name}'"
                f"{closest(attribute.column, columns)} (have: {have})",
                key=f"attributes[{i}].column",
            )
        if kind not in ATTRIBUTE_TYPES:
            raise ConfigError(
                f"recipe attribute column '{attribute.column}' is {kind}: expected one of {', '.join(ATTRIBUTE_TYPES)}",
                key=f"attributes[{i}].column",
            )
        if not _has_values(dataset, attribute.column):
            raise ConfigError(
                f"recipe attribute column '{attribute.column}' has no value in any item of '{name}', so "
                f"{attribute.relation} would have no triple; drop the attribute, or name a column with values",
                key=f"attributes[{i}].column",
            )
        if reason := _transform_kept_nothing(dataset, attribute):
            raise ConfigError(reason, key=f"attributes[{i}].transform")
    if recipe.item_name:
        try:
            parsed = list(string.Formatter().parse(recipe.item_name))
        except ValueError as error:
            raise ConfigError(f"recipe item_name '{recipe.item_name}': {error}", key="item_name") from None
        if any(spec or conversion for _, f, spec, conversion in parsed if f is not None):
            raise ConfigError(
                f"recipe item_name '{recipe.item_name}': fields are plain column names such as "
                "'{movie_title} ({release_year})', without format specs or conversions (values are text)",
                key="item_name",
            )
        for fld in (f for _, f, _, _ in parsed if f is not None):
            if fld not in columns:
                raise ConfigError(
                    f"recipe item_name: '{{{fld}}}' is not an item column of '{name}'{closest(fld, columns)} (have: {have})",
                    key="item_name",
                )
            if not _format_key(fld):
                raise ConfigError(
                    f"recipe item_name: '{{{fld}}}' names column '{fld}', which a format string cannot: a field "
                    "with '.' or '[' reads as an attribute or an index, one of digits alone as a position; "
                    "rename the column, or leave it out of item_name",
                    key="item_name",
                )
    return check_relation_filters(dataset, recipe)


def _format_key(field: str) -> bool:
    """Whether ``str.format_map`` looks ``{field}`` up as the key ``field`` itself (``{a.b}`` reads
    as ``a``'s attribute ``b``, ``{a[0]}`` as an index of ``a``, ``{2020}`` as a position)."""
    return not field.isdecimal() and "." not in field and "[" not in field


def attribute_values(dataset: Dataset, column: str) -> Iterator[tuple[int, object]]:
    """``(item, raw value)`` for each value of an item column, one per token of a ``token_seq``
    column: what an attribute relation turns into ``item -relation-> value`` triples."""
    values = dataset.item_features[column]
    several = dataset.item_feature_types[column] == "token_seq"
    for item, raw in enumerate(values.tolist() if hasattr(values, "tolist") else values):
        yield from ((item, token) for token in (raw if several else [raw]))


def _transform_kept_nothing(dataset: Dataset, attribute: AttributeRelation) -> str | None:
    """Why an attribute relation whose transform turns every value of its column into nothing
    is refused (``decade`` on a column of titles), or None when some value is kept."""
    if attribute.transform == "none":
        return None
    flat = [v for _, v in attribute_values(dataset, attribute.column) if value_text(v)]
    if any(attribute_value(attribute, v) for v in flat):
        return None
    examples = ", ".join(repr(value_text(v)) for v in list(dict.fromkeys(flat))[:3]) or "no value at all"
    return (
        f"recipe attribute column '{attribute.column}' with transform {attribute.transform}: no value of "
        f"'{dataset.name}' reads as a year (it has {examples}), so {attribute.relation} would have no triple; "
        "use transform: none, or a column of years"
    )


def attribute_value(attribute: AttributeRelation, raw: object) -> str:
    """The value node name a raw column value becomes under ``attribute`` (its ``transform``
    applied to the value's text form, e.g. 1995.0 -> "1990s" for ``decade``); "" for none."""
    return _TRANSFORMS[attribute.transform](value_text(raw))


def value_text(value: object) -> str:
    """An item column's value as the text a graph node is named by (``1995.0`` -> ``"1995"``, NaN
    -> ``""``, any other number in the shortest form that reads back as the same float, as text
    templates write it: ``:g`` kept 6 digits, which made 40.712776 and 40.71279 one node)."""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def _decade(value: str) -> str:
    try:
        year = int(float(value))
    except (ValueError, OverflowError):  # not a number, or infinite
        return ""
    return f"{year // 10 * 10}s"


_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "none": lambda v: v,
    "decade": lambda v: _decade(v) if v else "",
}


def relation_allowed(relation: str, recipe: GraphRecipe) -> bool:
    """Whether ``recipe``'s ``allow`` and ``deny`` patterns keep the relation ``relation``."""
    return (not recipe.allow or _matches(relation, recipe.allow)) and not _matches(relation, recipe.deny)


def check_relation_filters(dataset: Dataset, recipe: GraphRecipe) -> list[str]:
    """Refuse ``allow`` / ``deny`` patterns that leave none of the KG and attribute relations
    the recipe asks ``dataset`` for; notes on ``allow`` patterns that match none while others do,
    and on ``deny`` patterns that match none (they drop nothing).

    Raises:
        ConfigError: naming the patterns, a close relation pattern and some relations there are;
            ``error.key`` is ``allow`` or ``deny``.
    """
    kg = [str(r) for r in dataset.relations] if recipe.kg and dataset.relations is not None else []
    attributes = [a.relation for a in recipe.attributes]
    relations = kg + attributes
    if not relations or not (recipe.allow or recipe.deny):
        return []
    what = " and ".join(w for w, r in (("KG", kg), ("attribute", attributes)) if r) + f" relations of '{dataset.name}'"
    have = f"(have: {some_names(sorted(relations), shown=5)})"
    hints = set(relations)  # the names, and each dotted prefix as a pattern: 'film.*', 'film.film.*'
    for r in relations:
        parts = r.split(".")
        hints.update(".".join(parts[:n]) + ".*" for n in range(1, len(parts)))
    unmatched = [p for p in recipe.allow if not any(pattern_matches(r, p) for r in relations)]
    if unmatched and len(unmatched) == len(recipe.allow):
        raise ConfigError(
            f"recipe allow {list(recipe.allow)} matches none of the {what}{closest(unmatched[0], hints)}, "
            f"so the graph would have no relations {have}",
            key="allow",
        )
    kept = [r for r in relations if relation_allowed(r, recipe)]
    if not kept:
        keeps = f" that allow {list(recipe.allow)} keeps" if recipe.allow else ""
        raise ConfigError(
            f"recipe deny {list(recipe.deny)} drops every one of the {what}{keeps}, "
            f"so the graph would have no relations {have}",
            key="deny",
        )
    notes = [
        f"recipe allow pattern '{p}' matches none of the {what}{closest(p, hints)}; "
        f"the other patterns keep {len(kept)} of {len(relations)}"
        for p in unmatched
    ]
    for p in recipe.deny:
        if not any(pattern_matches(r, p) for r in relations):
            users = f" ('{INTERACTED}', the user edges of users: true, is no KG relation: set users: false)" if p == INTERACTED else ""
            notes.append(f"recipe deny pattern '{p}' matches none of the {what}{closest(p, hints)}, so it drops nothing{users}")
    return notes


def _matches(relation: str, patterns: tuple[str, ...]) -> bool:
    return any(pattern_matches(relation, p) for p in patterns)


def pattern_matches(relation: str, pattern: str) -> bool:
    """Whether an ``allow`` / ``deny`` entry names ``relation``: as the name itself, or as a shell
    pattern (``film.*``); the name comes first, since ``[...]`` in a pattern is a character class
    (``a[1]`` matched ``a1``, never the relation ``a[1]``)."""
    return relation == pattern or fnmatch.fnmatchcase(relation, pattern)


SOURCE_GRAPHS = Path(__file__).resolve().parents[2] / "graphs"  # the recipes beside kgrec's source tree
INSTALLED_GRAPHS = Path(__file__).resolve().parents[1] / "_graphs"  # the same files in an installed wheel


def find_recipe_file(dataset_name: str) -> Path | None:
    """The recipe file a dataset gets when none is named: ``graphs/NAME.yaml`` in the working
    folder, else kgrec's own (``graphs/ml-100k.yaml`` beside its source tree, or its copy
    in an installed wheel, ``kgrec/_graphs/``); ``None`` when none exists (then
    :func:`default_recipe`)."""
    name = f"{dataset_name}.yaml"
    candidates = [Path("graphs") / name, SOURCE_GRAPHS / name, INSTALLED_GRAPHS / name]
    return next((p for p in candidates if p.is_file()), None)


def _has_values(dataset: Dataset, column: str) -> bool:
    """Whether some item has a value in item column ``column`` (an attribute relation of it would
    have triples)."""
    return any(value_text(v) for _, v in attribute_values(dataset, column))


def default_recipe(dataset: Dataset) -> GraphRecipe:
    """The recipe of a dataset without a recipe file: its KG triples alone when it has them;
    without them, each multi-valued item column (``token_seq``: genres, categories, tags; not
    titles or descriptions) that has a value as a relation ``item.COLUMN``. ``GraphRecipe(kg=False)``,
    which builds no edges, when it has neither."""
    if dataset.kg is not None:
        return GraphRecipe()
    columns = _multi_valued_columns(dataset)
    return GraphRecipe(kg=False, attributes=tuple(AttributeRelation(c, f"item.{c}") for c in columns))


def _multi_valued_columns(dataset: Dataset) -> list[str]:
    """The item columns :func:`default_recipe` makes relations of without KG triples."""
    return [
        column for column, kind in dataset.item_feature_types.items()
        if kind == "token_seq" and not is_text_column(column)
        and _has_values(dataset, column)
    ]  # fmt: skip


def resolve_recipe(dataset: Dataset, path: str | Path | None = None) -> tuple[GraphRecipe, str]:
    """The recipe for ``dataset`` and where it came from, in words: the file ``path``, else
    :func:`find_recipe_file`'s, else :func:`default_recipe` (``"none (no graphs/NAME.yaml): ..."``).

    Raises:
        ConfigError: the recipe file is missing or invalid.
    """
    found = Path(path) if path is not None else find_recipe_file(dataset.name)
    if found is not None:
        recipe = load_recipe(found)
        try:
            check_recipe(dataset, recipe)
        except ConfigError as error:
            raise _in_file(error, found) from None
        return recipe, str(found)
    recipe, source = default_recipe(dataset), f"none (no graphs/{dataset.name}.yaml)"
    if recipe.kg:
        unused = _multi_valued_columns(dataset)
        if unused:  # with a KG they are left out, which a user of a category column would not guess
            return recipe, (f"{source}: the KG triples alone; the multi-valued item column{'s' if len(unused) > 1 else ''} "
                            f"{', '.join(unused)} {'are' if len(unused) > 1 else 'is'} not used: a recipe's attributes "
                            f"make {'them' if len(unused) > 1 else 'it'} relations (graphs/README.md; as "
                            f"graphs/{dataset.name}.yaml)")  # fmt: skip
        return recipe, f"{source}: the KG triples alone"
    if recipe.attributes:
        pairs = ", ".join(f"{a.column} -> {a.relation}" for a in recipe.attributes)
        return recipe, f"{source}: no KG triples, so the multi-valued item columns as relations ({pairs})"
    return recipe, f"{source}, and {dataset.name} has no KG triples and no multi-valued item columns"


def load_recipe(path: str | Path) -> GraphRecipe:
    """Read a recipe YAML file.

    Raises:
        ConfigError: the file is missing, is not valid YAML, or does not describe a valid recipe.
    """
    data = load_yaml(path, what="recipe file")
    try:
        return _recipe(data)
    except ConfigError as error:
        raise _in_file(error, path) from None


def _in_file(error: ConfigError, path: str | Path) -> ConfigError:
    """``error`` prefixed with ``path:line:column`` of its key, else with ``path``."""
    located = locate(error, path)
    return located if located is not error else ConfigError(f"{path}: {error}", key=error.key)


def _expect(key: str, value: Any, kind: type, expected: str) -> Any:
    if not isinstance(value, kind):
        raise ConfigError(f"{key}: {value!r}: expected {expected}", key=key)
    return value


def _string_list(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: {value!r}: expected a list of relation names or patterns", key=key)
    return value


def _attributes(value: Any) -> list[AttributeRelation]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError("attributes: expected a list of {column, relation, transform} entries", key="attributes")
    allowed = {f.name for f in fields(AttributeRelation)}
    out = []
    for i, entry in enumerate(value):
        where = f"attributes[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with keys column, relation, transform", key=where)
        unknown = sorted(str(k) for k in entry if k not in allowed)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key '{unknown[0]}'{closest(unknown[0], allowed)} "
                f"(expected one of: {', '.join(sorted(allowed))})",
                key=f"{where}.{unknown[0]}",
            )
        for key in ("column", "relation"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ConfigError(f"{where}: {key}: {entry.get(key)!r}: expected a non-empty string", key=f"{where}.{key}")
        transform = entry.get("transform", "none")
        if transform not in TRANSFORMS:
            raise ConfigError(
                f"{where}: transform: {transform!r}: expected one of {', '.join(TRANSFORMS)}", key=f"{where}.transform"
            )
        out.append(AttributeRelation(column=entry["column"], relation=entry["relation"], transform=transform))
    return out
