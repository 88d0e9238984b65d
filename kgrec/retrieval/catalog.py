"""The items a run can return: its trained items, plus added cold-start items, minus removed ones.

Positions ``0 .. n_base-1`` are the run's dataset items (in dataset index order, so position
``i`` is graph node ``i`` and row ``i`` of ``vectors.safetensors``); added items follow. An
index stores catalog positions as its ids; :class:`Catalog` maps them to raw item tokens,
titles and columns (for ``--where`` filters).

Changes are recorded in ``RUN_DIR/catalog/`` (written atomically as a whole):

* ``catalog.json``: format version, the sha256 of the run's ``vectors.safetensors`` it
  extends, the removed item tokens, and per added item its token, title, columns, the
  pathways that embedded it and the graph node it is explained through; and, once items
  brought nodes or edges to the run's graph, the graph extension (:class:`GraphExtension`) that
  a later ``add-items`` builds on;
* ``added.safetensors``: ``item`` ``(m, d)``, the added items' retrieval vectors, and
  ``encoded`` ``(m, t)``, the text encoder's vectors of their text (what ``search`` compares;
  NaN rows: no text). Earlier catalogs held text-pathway vectors (``text``) there instead,
  which are ignored: ``search`` leaves their added items out (delete ``RUN_DIR/catalog`` and
  add them again to include them).
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.data.atomic import TokenColumn
from kgrec.data.dataset import Dataset
from kgrec.errors import NotFoundError, RetrievalError
from kgrec.retrieval.index import vectors_sha256
from kgrec.utils.io import atomic_dir, read_safetensors, restore_interrupted_dir, swap_lock, write_json
from kgrec.utils.names import TitleIndex, ambiguous_title, closest, did_you_mean

CATALOG_DIR = "catalog"
FORMAT = "kgrec-catalog"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Filter:
    """``column=value`` (token equality, token_seq membership, numeric equality for float and
    float_seq columns) or ``column!=value``; text comparisons ignore letter case and Unicode's
    way of writing accents (NFC)."""

    column: str
    value: str
    negate: bool = False

    @classmethod
    def parse(cls, text: str) -> Filter:
        """From ``"genre=Comedy"`` or ``"genre!=Horror"``: the first ``=`` (``!=``) ends the
        column, so the value may hold either (``title=a!=b``)."""
        eq = text.find("=")
        negate = eq > 0 and text[eq - 1] == "!"
        column = text[: eq - 1 if negate else eq].strip() if eq >= 0 else text.strip()
        value = text[eq + 1 :].strip() if eq >= 0 else ""
        if column.endswith(("<", ">")) or (eq < 0 and ("<" in text or ">" in text)):  # year>=1990: not "column 'year>'"
            raise RetrievalError(f"--where '{text}': filters compare for equality only (COLUMN=VALUE or "
                                 f"COLUMN!=VALUE), not by <, >, <= or >=")  # fmt: skip
        if not column or not value:
            raise RetrievalError(f"--where '{text}': expected COLUMN=VALUE or COLUMN!=VALUE, e.g. class=Comedy")
        return cls(column, value, negate)

    def __str__(self) -> str:
        return f"{self.column}{'!=' if self.negate else '='}{self.value}"


@dataclass
class AddedItem:
    """An item added to the catalog after training (``kgrec add-items``).

    Attributes:
        item_id: raw token.
        title: display name.
        features: column -> value (``str``, ``list[str]`` or ``float``), from the new ``.item`` file.
        via: the pathways its vector came from (``text``, ``graph``).
        anchor: graph node of the item (an existing KG entity it was linked to), or ``None``.
        links: for an item without ``anchor``, its edges to existing graph nodes as
            ``[relation, node, forward]`` (``forward``: 1 when the item is the head).
        source: the ``.item`` file it was read from.
    """

    item_id: str
    title: str
    features: dict[str, Any] = field(default_factory=dict)
    via: tuple[str, ...] = ()
    anchor: int | None = None
    links: list[list[int]] = field(default_factory=list)
    source: str = ""


@dataclass(frozen=True)
class GraphExtension:
    """What added items brought to the run's graph, kept so that a later ``add-items`` builds on
    it: a new entity that two batches name (a new director) is one node, and the second batch's
    items reach what the first batch joined it to.

    Attributes:
        first_node: the stored graph's ``n_nodes``; new nodes are numbered from it up.
        entities: entity token -> new node, numbered ``first_node, first_node + 1, ...`` in
            order; an added item without a link is keyed ``"\\0" + item id``.
        triples: ``(head, relation, tail)`` edges added among stored and new nodes (the
            encoder's generated inverses are not stored).
    """

    first_node: int = 0
    entities: dict[str, int] = field(default_factory=dict)
    triples: tuple[tuple[int, int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entities or self.triples)

    def to_dict(self) -> dict[str, Any]:
        return {"first_node": self.first_node, "entities": self.entities, "triples": [list(t) for t in self.triples]}

    @classmethod
    def from_dict(cls, record: Any, where: Path) -> GraphExtension:
        """Read back :meth:`to_dict`'s record, checked: nodes numbered in order from
        ``first_node``, triples among the graph's and the new nodes.

        Raises:
            RetrievalError: a record of another shape (``where`` named).
        """
        try:
            first = record["first_node"]
            entities = {str(k): v for k, v in record["entities"].items()}
            triples = tuple(tuple(t) for t in record["triples"])
            end = first + len(entities)
            ok = (
                all(type(n) is int for n in [first, *entities.values()])
                and first >= 0
                and sorted(entities.values()) == list(range(first, end))
                and all(len(t) == 3 and all(type(n) is int and n >= 0 for n in t) for t in triples)
                and all(h < end and t < end for h, _, t in triples)
            )
        except (KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise RetrievalError(f"{where}: its graph_extension is damaged; remove {where.parent} and add the items again")
        return cls(first, entities, triples)  # type: ignore[arg-type]


def _rows(values: np.ndarray | None, m: int, width: int) -> np.ndarray:
    """``values`` as float32 ``(m, width)``, or NaN rows (unknown) when ``None``."""
    if values is None:
        return np.full((m, width), np.nan, np.float32)
    return np.asarray(values, np.float32).reshape(m, width)


def _column_values(column: Any, kind: str) -> list[Any]:
    """A dataset column as plain Python values: ``str``, ``list[str]``, ``float``."""
    if isinstance(column, TokenColumn):
        return [str(v) for v in column.values()]
    if kind == "float":
        return [float(v) for v in np.asarray(column, dtype=np.float64)]
    if kind == "float_seq":
        return [list(map(float, v)) for v in column]
    if kind == "token_seq":
        return [list(map(str, v)) for v in column]
    return ["" if v is None else str(v) for v in column]


class Catalog:
    """Item tokens, titles, columns and retrieval vectors by catalog position, and which are active."""

    def __init__(
        self,
        tokens: Sequence[str],
        titles: Sequence[str],
        vectors: np.ndarray,
        features: dict[str, list[Any]],
        feature_types: dict[str, str],
        n_base: int,
        added: Sequence[AddedItem] = (),
        removed: Iterable[str] = (),
        base_sha256: str = "",
        text_dim: int = 0,
        added_encoded: np.ndarray | None = None,
        graph_extension: GraphExtension | None = None,
        fused_dim: int = 0,
        added_fused: np.ndarray | None = None,
    ) -> None:
        self.tokens = [str(t) for t in tokens]
        self.titles = [str(t) for t in titles]
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (n, d)
        self.features = features
        self.feature_types = feature_types
        self.n_base = n_base
        self.added = list(added)
        self.base_sha256 = base_sha256
        self.graph_extension = graph_extension or GraphExtension()
        n = len(self.tokens)
        self.added_encoded = _rows(added_encoded, len(self.added), text_dim)  # (m, t) text-encoder vectors
        self.added_fused = _rows(added_fused, len(self.added), fused_dim)  # (m, f) the model's fused item vectors
        if self.vectors.shape[0] != n or len(self.titles) != n or n_base + len(self.added) != n:
            raise RetrievalError(
                f"catalog: {n} tokens, {len(self.titles)} titles, {self.vectors.shape[0]} vectors, "
                f"{n_base} base + {len(self.added)} added items do not agree; remove RUN_DIR/{CATALOG_DIR} to reset it"
            )
        self._position = {t: i for i, t in enumerate(self.tokens)}
        self._titled: TitleIndex | None = None  # built on the first lookup by title
        self._columns: dict[str, _ColumnIndex] = {}  # built on the first filter on each column
        if len(self._position) != n:
            raise RetrievalError("catalog: item tokens are not unique")
        self.active = np.ones(n, dtype=bool)
        for token in removed:
            if token not in self._position:
                raise RetrievalError(f"catalog: removed item '{token}' is not an item of this run")
            self.active[self._position[token]] = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_run(
        cls,
        dataset: Dataset,
        base_vectors: np.ndarray,
        base_sha256: str = "",
        titles: Sequence[str] | None = None,
        text_dim: int = 0,
        fused_dim: int = 0,
    ) -> Catalog:
        """The run's own items (nothing added or removed); ``titles`` default to the dataset's
        item names; ``text_dim`` is the width of the run's text vectors (0 without text);
        ``fused_dim`` that of the model's fused item vectors, which the rating and like towers
        score added items by (0: not kept)."""
        if base_vectors.shape[0] != dataset.n_items:
            raise RetrievalError(
                f"vectors.safetensors has {base_vectors.shape[0]} item vectors, the dataset {dataset.n_items} items"
            )
        features = {
            name: _column_values(column, dataset.item_feature_types[name])
            for name, column in dataset.item_features.items()
        }
        return cls(
            tokens=[str(t) for t in dataset.items],
            titles=list(titles) if titles is not None else dataset.item_names(),
            vectors=base_vectors,
            features=features,
            feature_types=dict(dataset.item_feature_types),
            n_base=dataset.n_items,
            base_sha256=base_sha256,
            text_dim=text_dim,
            fused_dim=fused_dim,
        )

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        dataset: Dataset,
        base_vectors: np.ndarray,
        base_sha256: str,
        titles: Sequence[str] | None = None,
        text_dim: int = 0,
        fused_dim: int = 0,
    ) -> Catalog:
        """The run's items with the changes recorded in ``RUN_DIR/catalog/`` (if any). Items
        added before the catalog kept fused vectors have none (NaN rows): the rating and like
        towers do not score them; with ``fused_dim`` 0 (no such tower) none are kept."""
        catalog = cls.from_run(dataset, base_vectors, base_sha256, titles, text_dim, fused_dim)
        folder = Path(run_dir) / CATALOG_DIR
        with swap_lock(folder):  # no save swaps the folder while its two files are read
            restore_interrupted_dir(folder, lock=False)
            record, stored = _read_files(folder)
        if record is None:
            return catalog
        where = folder / "catalog.json"
        if record.get("format") != FORMAT or record.get("format_version") != FORMAT_VERSION:
            raise RetrievalError(f"{where}: not a kgrec catalog v{FORMAT_VERSION}")
        if record.get("base_vectors_sha256") != base_sha256:
            raise RetrievalError(
                f"{where}: records changes to another model than this run's (its vectors.safetensors, or "
                f"model.safetensors for a run without the retrieval tower, changed: retrained?); "
                f"remove {folder} and add the items again"
            )
        added = _added_items(record.get("added", []), where)
        vectors = np.zeros((0, base_vectors.shape[1]), np.float32)
        encoded = fused = None
        if added:
            path = folder / "added.safetensors"
            if stored is None:
                raise RetrievalError(f"{path}: missing; remove {folder} and add the items again")
            if "item" not in stored:
                raise RetrievalError(f"{path}: holds no 'item' vectors; remove {folder} and add the items again")
            vectors, encoded, fused = stored["item"], stored.get("encoded"), stored.get("fused")
            if fused is not None and not fused_dim:  # kept by a catalog that scored them: not asked for here
                fused = None
            if vectors.shape != (len(added), base_vectors.shape[1]) or (
                encoded is not None and encoded.shape != (len(added), text_dim)
            ) or (fused is not None and fused.shape != (len(added), fused_dim)):
                raise RetrievalError(
                    f"{path}: holds {vectors.shape} vectors (text encoder: "
                    f"{None if encoded is None else encoded.shape}, fused: {None if fused is None else fused.shape}) "
                    f"for {len(added)} added items of dimension {base_vectors.shape[1]} (text {text_dim}, fused "
                    f"{fused_dim}); remove {folder} and add the items again"
                )
        extension = record.get("graph_extension")
        extension = GraphExtension.from_dict(extension, where) if extension is not None else None
        try:
            catalog = catalog.with_added(added, vectors, encoded, extension, fused)
        except RetrievalError as error:  # an id twice, or a trained item's: not the user adding it now
            raise RetrievalError(f"{where}: {error}; remove {folder} and add the items again") from None
        return catalog.with_removed(_removed_tokens(record.get("removed", []), catalog, where))

    def with_added(
        self,
        items: Sequence[AddedItem],
        vectors: np.ndarray,
        encoded: np.ndarray | None = None,
        graph_extension: GraphExtension | None = None,
        fused: np.ndarray | None = None,
    ) -> Catalog:
        """A new catalog with ``items``, their vectors ``(m, d)`` and (optionally) their
        text-encoder vectors ``(m, t)`` and the model's fused vectors ``(m, f)`` appended (left out
        when this catalog keeps none, ``fused_dim`` 0: a model without the rating and like towers,
        as :meth:`load` leaves them out), and the run's graph extended as ``graph_extension`` says
        (this catalog's extension and what ``items`` brought; kept when ``None``)."""
        if not items:
            return self
        for item in items:
            if state := self.taken(item.item_id):
                raise RetrievalError(f"item '{item.item_id}' {state}")
        types, clash = self.column_types([item.features for item in items])
        if clash is not None:
            row, name, value = clash
            raise RetrievalError(f"item '{items[row].item_id}': column '{name}' {self.misfit(name, value, types)}")
        n, m = len(self.tokens), len(items)
        features: dict[str, list[Any]] = {name: list(values) for name, values in self.features.items()}
        for name in {c for item in items for c in item.features}:
            features.setdefault(name, [None] * n)
        for name, values in features.items():
            values.extend(item.features.get(name) for item in items)
            if name in types and name not in self.feature_types:  # typed now: its earlier empty cells too
                features[name] = _fitted(values, types[name])
        out = Catalog(
            tokens=[*self.tokens, *(i.item_id for i in items)],
            titles=[*self.titles, *(i.title for i in items)],
            vectors=np.concatenate([self.vectors, np.asarray(vectors, np.float32).reshape(m, -1)]),
            features=features,
            feature_types=types,
            n_base=self.n_base,
            added=[*self.added, *items],
            base_sha256=self.base_sha256,
            text_dim=self.text_dim,
            added_encoded=np.concatenate([self.added_encoded, _rows(encoded, m, self.text_dim)]),
            graph_extension=graph_extension if graph_extension is not None else self.graph_extension,
            fused_dim=self.fused_dim,
            added_fused=np.concatenate([self.added_fused, _rows(fused if self.fused_dim else None, m, self.fused_dim)]),
        )
        out.active[:n] = self.active
        return out

    def column_types(self, rows: Sequence[dict[str, Any]]) -> tuple[dict[str, str], tuple[int, str, Any] | None]:
        """The catalog's column types with those of new columns (the kind of their first
        non-empty value), and the first clash of ``rows`` (new items' column -> value, as
        :attr:`AddedItem.features`) with them: its row, column and value, or ``None``. A column
        must hold one kind of value, or its filters would break."""
        types = dict(self.feature_types)
        for row, features in enumerate(rows):
            for name, value in features.items():
                if value is None or (_empty(value) and name not in types):
                    continue  # an empty cell says nothing of a new column's kind (an empty number is saved as null)
                found = _kind_of(value)
                kind = types.setdefault(name, found)
                if found != kind and not (value == [] and kind.endswith("_seq")):
                    return types, (row, name, value)
        return types, None

    @staticmethod
    def misfit(name: str, value: Any, types: dict[str, str]) -> str:
        """Why ``value`` does not fit column ``name`` (of :meth:`column_types`' ``types``)."""
        kind = types[name]
        return f"holds {_KIND_NAMES[kind]} in the catalog, got {value!r} (in a .item file, declare it '{name}:{kind}')"

    def with_removed(self, tokens: Iterable[str]) -> Catalog:
        """A copy where ``tokens`` are inactive (unknown tokens raise)."""
        out = Catalog(
            self.tokens, self.titles, self.vectors, self.features, self.feature_types, self.n_base,
            self.added, (), self.base_sha256, self.text_dim, self.added_encoded, self.graph_extension,
            self.fused_dim, self.added_fused,
        )  # fmt: skip
        out.active = self.active.copy()
        out._columns = self._columns  # the same columns: their filter indexes serve both
        for token in tokens:
            out.active[out.position(str(token), allow_removed=True)] = False
        return out

    def save(self, run_dir: str | Path) -> None:
        """Record the added and removed items in ``RUN_DIR/catalog/`` (atomically)."""
        from safetensors.numpy import save_file

        folder = Path(run_dir) / CATALOG_DIR
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "base_vectors_sha256": self.base_sha256,
            "removed": self.removed_tokens(),
            "added": [_jsonable(asdict(item)) for item in self.added],
        }
        if self.graph_extension:
            record["graph_extension"] = self.graph_extension.to_dict()
        with atomic_dir(folder) as tmp:
            if self.added:
                tensors = {"item": np.ascontiguousarray(self.vectors[self.n_base :])}
                if self.text_dim:
                    tensors["encoded"] = self.added_encoded
                if self.fused_dim:
                    tensors["fused"] = self.added_fused
                save_file(tensors, str(tmp / "added.safetensors"))
            write_json(tmp / "catalog.json", record)

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def dim(self) -> int:
        """Width of the retrieval vectors."""
        return int(self.vectors.shape[1])

    @property
    def text_dim(self) -> int:
        """Width of the run's text-encoder vectors (0 without text)."""
        return int(self.added_encoded.shape[1])

    @property
    def fused_dim(self) -> int:
        """Width of the model's fused item vectors kept for added items (0: not kept)."""
        return int(self.added_fused.shape[1])

    @property
    def n_active(self) -> int:
        """Items not removed: what the index holds."""
        return int(self.active.sum())

    def active_ids(self) -> np.ndarray:
        """Catalog positions of the items not removed, ``(n_active,)`` int64 (the index's ids)."""
        return np.flatnonzero(self.active).astype(np.int64)

    def removed_tokens(self) -> list[str]:
        """Raw ids of the removed items, in catalog order."""
        return [self.tokens[i] for i in np.flatnonzero(~self.active)]

    def position(self, token: str, allow_removed: bool = False) -> int:
        """Catalog position of a raw item token, or of the one item with that title (an id wins;
        ``"Toy Story (1995)"`` or, when no title is that, ``"toy story"``: see
        :class:`~kgrec.utils.names.TitleIndex`).

        Raises:
            NotFoundError: unknown token, or (unless ``allow_removed``) a removed item.
            RetrievalError: a title several items have.
        """
        token = str(token)
        pos = self._position.get(token, self._position.get(token.strip()))  # " 50" pasted from a table too
        if pos is None:
            pos = self._by_title(token)
        if pos is None:
            examples = ", ".join(self.tokens[:3])
            hint = did_you_mean(str(token), self.tokens, self.titles, self.active_ids())
            if not hint and self.titles == self.tokens:  # no title column: a title finds nothing, say why
                hint = ("; this run's items have no titles (no item column has a title's name: kgrec data info "
                        "DATA_DIR says which names count), so items are found by id only")  # fmt: skip
            raise NotFoundError(
                f"unknown item '{token}': not one of the {self.n_active} items of this run "
                f"(raw item ids, e.g. {examples}){hint}"
            )
        if not allow_removed and not self.active[pos]:
            raise NotFoundError(f"item '{self.tokens[pos]}' was removed from this run's catalog (kgrec remove-items)")
        return pos

    def _by_title(self, text: str) -> int | None:
        if self._titled is None:
            self._titled = TitleIndex(self.titles)
        found = self._titled.lookup(text, self.active)  # an active item first (also for exclude, which takes removed ones)
        found = found or self._titled.lookup(text)  # a removed item's title: "was removed", not "unknown"
        if len(found) > 1:
            raise RetrievalError(ambiguous_title(text, self.tokens, self.titles, found))
        return found[0] if found else None

    def taken(self, token: str) -> str | None:
        """Why ``token`` cannot be added (``"is already in the catalog"``, or ``"was removed; add
        it under a new id"``), or None when it is new."""
        position = self._position.get(token)
        if position is None:
            return None
        return "is already in the catalog" if self.active[position] else "was removed; add it under a new id"

    def added_item(self, position: int) -> AddedItem | None:
        """What ``add-items`` recorded of the item at ``position``; ``None`` for a trained item."""
        return self.added[position - self.n_base] if position >= self.n_base else None

    def checksums(self) -> dict[str, str]:
        """sha256 of the active ids + vectors (what an index holds) and of their tokens."""
        ids = self.active_ids()
        tokens = "\n".join(self.tokens[i] for i in ids).encode("utf-8")
        import hashlib

        return {"vectors_sha256": vectors_sha256(ids, self.vectors[ids]), "ids_sha256": hashlib.sha256(tokens).hexdigest()}

    # ------------------------------------------------------------------ filters
    def _column(self, name: str) -> _ColumnIndex:
        """The column's values as flat arrays (built on the first filter on it, then kept)."""
        index = self._columns.get(name)
        if index is None:
            index = self._columns[name] = _ColumnIndex.build(self.features[name], self.feature_types.get(name, "token"))
        return index

    def _parsed(self, raw: Filter | str) -> Filter:
        """``raw`` as a :class:`Filter` on a known column (else a :class:`RetrievalError`)."""
        f = Filter.parse(raw) if isinstance(raw, str) else raw
        if f.column not in self.features:
            available = ", ".join(sorted(self.features)) or "none"
            raise RetrievalError(f"--where {f}: unknown column '{f.column}'{closest(f.column, self.features)} (item columns: {available})")
        return f

    def where_mask(self, filters: Sequence[Filter | str]) -> np.ndarray:
        """Boolean ``(n,)``: active items that pass every filter (vectorised: a column's values
        are indexed on its first filter, so later queries cost a comparison of flat arrays)."""
        mask = self.active.copy()
        for raw in filters:
            f = self._parsed(raw)
            match = self._column(f.column).matches(f, len(self))
            mask &= ~match if f.negate else match
        return mask

    def unmatched_filters(self, filters: Sequence[Filter | str]) -> list[str]:
        """Why filters leave nothing, for the filters that cause it on their own: each
        ``column=value`` that no active item matches, with the column's closest value
        (``"class=Dramaa matches no item (did you mean 'Drama'?)"``), or its range for a number
        (``"year=1921 matches no item (values from 1922 to 1998)"``), and each ``column!=value``
        that every active item matches. When each filter alone keeps some item but no item
        passes them all, one reason says so with each filter's count; empty when some item
        passes them all (then the query's exclusions left none). See :func:`_no_match_hint`
        for a number written otherwise than a text column holds it and for several words
        asked of a column of single words."""
        reasons = []
        parsed = [self._parsed(raw) for raw in filters]
        counts = [int(self.where_mask([f]).sum()) for f in parsed]
        for f, count in zip(parsed, counts, strict=True):
            if count:
                continue
            if f.negate:
                if self.active.any():
                    reasons.append(f"{f} leaves no item (every item matches {f.column}={f.value})")
                continue
            values = self._column(f.column).values(self.active)
            hint = _no_match_hint(f, self.feature_types.get(f.column, "token"), values)
            reasons.append(f"{f} matches no item{hint}")
        if not reasons and len(parsed) > 1 and not self.where_mask(parsed).any():
            each = ", ".join(f"{f}: {count}" for f, count in zip(parsed, counts, strict=True))
            reasons.append(f"each filter matches items, but no item matches all of them ({each} items)")
        return reasons

    def row(self, position: int) -> dict[str, Any]:
        """The item's columns at ``position``."""
        return {name: values[position] for name, values in self.features.items()}


def _key(text: str) -> str:
    """A text value as filters compare it: letter case aside, accents written one way (NFC)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


@dataclass(frozen=True)
class _ColumnIndex:
    """One item column as flat arrays, for filters: value ``j`` belongs to item ``owner[j]``
    (an item without a value owns none, a list owns one per element) and is ``numbers[j]`` in a
    number column (float, float_seq), else text ``codes[j]``, one code per :func:`_key`."""

    owner: np.ndarray  # (nnz,) int32 item positions
    numbers: np.ndarray | None  # (nnz,) float64, number columns
    codes: np.ndarray | None  # (nnz,) int32, text columns
    keys: dict[str, int]  # _key(text) -> code
    shown: list[str]  # code -> the text as first written

    @classmethod
    def build(cls, values: Sequence[Any], kind: str) -> _ColumnIndex:
        """From a catalog column of ``kind`` (``str``, ``list``, ``float`` or ``None`` per item)."""
        if kind == "float":  # one number or None (NaN) per item
            numbers = np.array(values, np.float64)  # (n,)
            owner = np.flatnonzero(~np.isnan(numbers)).astype(np.int32)
            return cls(owner, numbers[owner], None, {}, [])
        positions: list[int] = []
        flat: list[Any] = []
        for i, value in enumerate(values):  # no list per item: 10^6 small lists cost seconds of GC
            if isinstance(value, list):
                positions.extend(repeat(i, len(value)))
                flat.extend(value)
            elif value is not None and not (isinstance(value, float) and math.isnan(value)):
                positions.append(i)
                flat.append(value)
        owner = np.asarray(positions, np.int32)
        if kind == "float_seq":
            return cls(owner, np.asarray(flat, np.float64), None, {}, [])
        keys: dict[str, int] = {}
        shown: list[str] = []
        code_of: dict[str, int] = {}  # as written -> code
        codes = np.empty(len(flat), np.int32)
        for j, v in enumerate(flat):
            text = str(v)
            code = code_of.get(text)
            if code is None:
                code = code_of[text] = keys.setdefault(_key(text), len(keys))
                if code == len(shown):
                    shown.append(text)
            codes[j] = code
        return cls(owner, None, codes, keys, shown)

    def matches(self, f: Filter, n: int) -> np.ndarray:
        """Boolean ``(n,)``: the items holding ``f.value`` (negation aside)."""
        if self.numbers is not None:
            try:
                target = float(f.value)
            except ValueError:
                raise RetrievalError(f"--where {f}: column '{f.column}' holds numbers, '{f.value}' is not one") from None
            hit = self.numbers == target
        else:
            code = self.keys.get(_key(f.value))
            hit = self.codes == code if code is not None else np.zeros(len(self.owner), bool)
        match = np.zeros(n, bool)
        match[self.owner[hit]] = True
        return match

    def values(self, active: np.ndarray) -> set[str]:
        """The distinct values of the ``active`` items, as text."""
        held = active[self.owner]
        if self.numbers is not None:
            numbers = self.numbers[held]
            return {str(float(v)) for v in np.unique(numbers[~np.isnan(numbers)])}
        return {self.shown[c] for c in np.unique(self.codes[held])} - {""}


def _no_match_hint(f: Filter, kind: str, values: set[str]) -> str:
    """Why ``f`` matches none of a column's ``values``, in brackets after "matches no item":

    * several words asked of a ``token_seq`` column, which holds single words (tokens) and whose
      filter matches one of them: one filter per word (``movie_title=Star Wars``);
    * a number written otherwise than a text (``token``) column holds it, compared as text
      (``release_year=1995.0`` for ``1995``): the value as the column writes it;
    * a number outside a numeric column's range: the range;
    * else the closest value, if one is close (a misspelling)."""
    words = f.value.split()
    if kind == "token_seq" and len(words) > 1:
        return _several_words_hint(f, words, values)
    numbers = sorted((n, v) for v in values if (n := _number(v)) is not None)
    wanted = _number(f.value)
    if wanted is None or len(numbers) * 2 <= len(values):  # not a number, or not a numeric column
        return closest(f.value, values)
    written = next((v for n, v in numbers if n == wanted), None)
    if kind != "float" and written is not None:
        return (f" ({f.column} holds text, compared as written, not as numbers: did you mean "
                f"{f.column}{'!=' if f.negate else '='}{written}?)")  # fmt: skip
    return f" (values from {numbers[0][0]:g} to {numbers[-1][0]:g})"


def _several_words_hint(f: Filter, words: list[str], values: set[str]) -> str:
    """For ``column=several words`` on a ``token_seq`` column: it holds single words, and a filter
    keeps the items holding one of them; one filter per word keeps those holding them all."""
    held = {_key(v) for v in values}
    said = f" ({f.column} holds single words (tokens), and a filter matches one of them, never several"
    if all(_key(w) in held for w in words):
        return said + ": one filter per word, " + " and ".join(f"{f.column}={w}" for w in words) + ", keeps items with all of them)"
    return said + f": give one word, e.g. {f.column}={words[0]})"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


_KIND_NAMES = {"float": "numbers", "token": "text", "token_seq": "lists of tokens", "float_seq": "lists of numbers"}


def _kind_of(value: Any) -> str:
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "float_seq" if value and all(isinstance(v, float) for v in value) else "token_seq"
    return "token"


def _empty(value: Any) -> bool:
    """Whether ``value`` is an empty cell of a text or list column (``""``, ``[]``)."""
    return isinstance(value, (str, list)) and not value


def _fitted(values: list[Any], kind: str) -> list[Any]:
    """A column's ``values`` with the empty cells of another kind than ``kind`` (an empty text
    or list written before the column had a type) as ``None``, which every kind reads as no
    value: ``[]`` in a number column broke its filters."""
    empty_of_kind = "" if kind == "token" else [] if kind.endswith("_seq") else None
    return [None if _empty(v) and v != empty_of_kind else v for v in values]


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    out["features"] = {
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.get("features", {}).items()
    }
    out["via"] = list(values.get("via", ()))
    return out


def _added_items(records: Any, where: Path) -> list[AddedItem]:
    """``catalog.json``'s ``added`` list as :class:`AddedItem`, checked: an object per item with
    its string ``item_id`` and ``title``, ``features`` an object, ``via`` a list, no other keys.

    Raises:
        RetrievalError: a damaged or hand-edited record (``where`` and the item named).
    """
    fix = f"remove {where.parent} and add the items again"
    if not isinstance(records, list):
        raise RetrievalError(f"{where}: 'added' is not a list of items ({type(records).__name__}); {fix}")
    keys = {f.name for f in fields(AddedItem)}
    items = []
    for i, a in enumerate(records, 1):
        if not (
            isinstance(a, dict) and set(a) <= keys
            and isinstance(a.get("item_id"), str) and isinstance(a.get("title"), str)
            and isinstance(a.get("features", {}), dict) and isinstance(a.get("via", []), list)
        ):  # fmt: skip
            raise RetrievalError(f"{where}: added item {i} is damaged (expected an object with a string item_id and "
                                 f"title, features an object, via a list, no other key than {sorted(keys)}); {fix}")  # fmt: skip
        items.append(AddedItem(**{**a, "via": tuple(a.get("via", ()))}))
    return items


def _removed_tokens(records: Any, catalog: Catalog, where: Path) -> list[str]:
    """``catalog.json``'s ``removed`` list, checked: each an item id of ``catalog``, as written
    (not a title, nor an id with spaces around it, as queries may name items).

    Raises:
        RetrievalError: a damaged or hand-edited record (``where`` and the entry named).
    """
    fix = f"remove {where.parent} and add the items again, or edit the list"
    if not isinstance(records, list):
        raise RetrievalError(f"{where}: 'removed' is not a list of item ids ({type(records).__name__}); {fix}")
    for token in records:
        if not isinstance(token, str) or token not in catalog._position:
            raise RetrievalError(f"{where}: removed item {token!r} is not an item id of this run; {fix}")
    return records


def _read_files(folder: Path) -> tuple[dict | None, dict[str, np.ndarray] | None]:
    """The catalog record (``None`` without ``catalog.json``: no changes) and the added items'
    tensors (``None`` without ``added.safetensors``), read as they are on disk."""
    where = folder / "catalog.json"
    if not where.is_file():
        return None, None
    try:
        record = json.loads(where.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise RetrievalError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(record, dict):  # null was read as no catalog: the changes silently dropped
        raise RetrievalError(f"{where}: not a kgrec catalog v{FORMAT_VERSION} (JSON {json.dumps(record)[:40]}, not an "
                             f"object); remove {folder} and add the items again")  # fmt: skip
    tensors = folder / "added.safetensors"
    if not tensors.is_file():
        return record, None
    return record, read_safetensors(tensors, f"remove {folder} and add the items again", RetrievalError, as_numpy=True)
