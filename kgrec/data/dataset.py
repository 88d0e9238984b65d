"""A dataset folder in memory: id maps, split interactions, item/user features, KG triples.

A dataset is a folder ``NAME/`` holding RecBole atomic files ``NAME.inter``, ``NAME.item``,
``NAME.user``, ``NAME.kg``, ``NAME.link`` (any subset, but interactions are required). When
``NAME.train.inter``, ``NAME.valid.inter`` and ``NAME.test.inter`` are present they are the
split, used as given; otherwise ``NAME.inter`` is split as :class:`SplitConfig` says.

Raw tokens map to contiguous indices: users and items in order of first appearance (``.user``
/ ``.item`` rows first, then the interactions: ``NAME.inter``, or the train, valid and test files
in that order, rows with label 0 included); entities: ``.kg`` heads, then tails, then ``.link``
entities, each in order of first appearance.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from kgrec.data.atomic import AtomicTable, Column, TokenColumn, read_atomic
from kgrec.data.split import TEST, TRAIN, VALID, SplitConfig, split_interactions, split_negatives
from kgrec.errors import DataError, DataWarning
from kgrec.utils.io import write_json
from kgrec.utils.names import some_names

DuplicateRule = Literal["last", "keep", "error"]
RATING_MAX = float(np.finfo(np.float32).max)  # ratings are held as float32
#: Item columns that name an item, by name (any letter case), the first present the title: what
#: results show and ``--item "Toy Story"`` looks up. An explicit list, not a pattern: ``brand_name``,
#: ``artist_name`` (beside ``track_name``), ``album_name`` or ``category_name`` name something else.
#: The first five are those of ml-100k / ML-1M, Book-Crossing, MIND and RecBole's atomic datasets
#: (Yelp: ``item_name``, anime / Last.fm: ``name``); the rest common names in shops' and other
#: public data (Instacart ``product_name``, H&M ``prod_name``, RecBole's ml-10m ``movie_name``,
#: Steam ``app_name``, Spotify / Last.fm-1b ``track_name``).
TITLE_COLUMNS = (
    "title", "movie_title", "book_title", "name", "item_name",
    "item_title", "product_name", "product_title", "prod_name", "movie_name", "book_name",
    "track_name", "track_title", "song_name", "song_title", "app_name", "game_name", "game_title",
    "news_title", "article_title", "recipe_name", "course_name", "course_title", "video_title",
    "business_name", "venue_name", "poi_name",
)  # fmt: skip
TEXT_WORDS = ("title", "name", "description", "summary", "overview", "plot", "text", "abstract", "review")


def is_text_column(name: str) -> bool:
    """Whether an item column holds words rather than a list of tags, judged by the whole words
    of its name: ``movie_title`` and ``plot`` do; ``genres`` and ``genre_names`` do not."""
    words = name.lower().split("_")
    return name.lower() in TITLE_COLUMNS or any(w in words for w in TEXT_WORDS)


@dataclass(frozen=True)
class IdSide:
    """One of two files whose ids must meet: where, which columns, its distinct ids (in file
    order) and how a message calls it (``the interactions``, ``the KG``)."""

    path: Path
    columns: tuple[str, ...]
    ids: np.ndarray  # (n,) object, distinct raw tokens
    label: str


class DisjointIdsError(DataError):
    """Two files whose ids must meet share none (``M000`` in ``.item``, ``m000`` in ``.inter``):
    every row of one would be left unjoined. The message names both files, shows ids of each
    and says when they would match with letter case and surrounding spaces ignored. Located at
    ``side``'s file (no line: the whole file is at fault); :meth:`at` moves it to other files."""

    def __init__(self, side: IdSide, other: IdSide, noun: str) -> None:
        self.side, self.other, self.noun = side, other, noun
        columns = ", ".join(f"'{c}'" for c in other.columns)
        message = (
            f"none of its {len(side.ids):,} {noun} occurs in {other.label} ({other.path}, "
            f"column{'s' if len(other.columns) > 1 else ''} {columns}): this file has {some_names(side.ids)}, "
            f"{other.label} {some_names(other.ids)}{_loose_match_hint(side.ids, other.ids)}"
        )
        super().__init__(message, side.path, None, side.columns[0])

    def at(self, move: Callable[[IdSide], IdSide]) -> DisjointIdsError:
        """The same error with each side moved by ``move`` (another file and column names:
        the CSV files an import converted)."""
        return DisjointIdsError(move(self.side), move(self.other), self.noun)


class RepeatedIdError(DataError):
    """An id that a file of one row per id (``.item``, ``.user``) holds twice: at ``line``, and
    before at ``first_line`` (kept apart, so an import can move both to its CSV file's lines)."""

    def __init__(self, token: str, first_line: int, path: str | Path, line: int, column: str) -> None:
        self.token, self.first_line = token, first_line
        super().__init__(f"'{token}' appears again (first on line {first_line}); expected one row per id", path, line, column)


def _loose_match_hint(ids: np.ndarray, other_ids: np.ndarray) -> str:
    """``; 40 of them match when letter case is ignored ('M000' is 'm000' there) ...``, or ``""``."""
    loose = {_loose(t): t for t in other_ids.tolist()}
    pairs = [(t, loose[_loose(t)]) for t in ids.tolist() if _loose(t) in loose]
    if not pairs:
        return ""
    first, twin = pairs[0]
    if first.strip() == twin.strip():
        ignored = "surrounding spaces are"
    elif first.casefold() == twin.casefold():
        ignored = "letter case is"
    else:
        ignored = "letter case and surrounding spaces are"
    return (
        f"; {len(pairs):,} of them match when {ignored} ignored ({first!r} here is {twin!r} there): "
        "write the ids the same way in both files"
    )


def _loose(token: str) -> str:
    return token.strip().casefold()


@dataclass
class Interactions:
    """Parallel arrays of (user, item[, rating][, timestamp]) using contiguous indices."""

    user: np.ndarray  # (N,) int64
    item: np.ndarray  # (N,) int64
    rating: np.ndarray | None = None  # (N,) float32
    timestamp: np.ndarray | None = None  # (N,) float64

    def __len__(self) -> int:
        return len(self.user)

    def has_item(self, n_items: int) -> np.ndarray:
        """``(n_items,)`` bool: which items occur at least once here."""
        return np.bincount(self.item, minlength=n_items) > 0

    def has_user(self, n_users: int) -> np.ndarray:
        """``(n_users,)`` bool: which users occur at least once here."""
        return np.bincount(self.user, minlength=n_users) > 0

    def select(self, index: np.ndarray) -> Interactions:
        """The interactions at ``index`` (a boolean mask or integer positions)."""
        return Interactions(
            user=self.user[index],
            item=self.item[index],
            rating=None if self.rating is None else self.rating[index],
            timestamp=None if self.timestamp is None else self.timestamp[index],
        )

    @staticmethod
    def concat(parts: list[Interactions]) -> Interactions:
        """Stack several interaction sets (ratings/timestamps kept only if all have them)."""

        def cat(name: str) -> np.ndarray | None:
            arrays = [getattr(p, name) for p in parts]
            return None if any(a is None for a in arrays) else np.concatenate(arrays)

        return Interactions(user=cat("user"), item=cat("item"), rating=cat("rating"), timestamp=cat("timestamp"))


@dataclass
class KGTriples:
    """Knowledge-graph triples as indices into ``Dataset.entities`` and ``Dataset.relations``."""

    head: np.ndarray  # (T,) int64
    relation: np.ndarray  # (T,) int64
    tail: np.ndarray  # (T,) int64

    def __len__(self) -> int:
        return len(self.head)


def find_title_column(columns: Iterable[str]) -> str | None:
    """The column of ``columns`` holding items' readable names, if any: the first of
    :data:`TITLE_COLUMNS` among them, whatever the letter case (``Title`` too; of two names equal
    but for case, the first)."""
    by_name = {c.lower(): c for c in reversed(list(columns))}
    return next((by_name[c] for c in TITLE_COLUMNS if c in by_name), None)


@dataclass(repr=False)
class Dataset:
    """Everything read from one dataset folder. Build it with :func:`load_dataset`. Its repr is
    one line of counts (the dataclass's listed every id and text, 100k characters and more)."""

    name: str
    path: Path
    users: np.ndarray  # (U,) raw user tokens; position = index
    items: np.ndarray  # (I,) raw item tokens
    train: Interactions
    valid: Interactions
    test: Interactions
    split: str  # how the parts were made, e.g. "given" or "ratio(0.8,0.1,0.1) seed=2026"
    item_features: dict[str, Column] = field(default_factory=dict)  # aligned with ``items``
    item_feature_types: dict[str, str] = field(default_factory=dict)
    user_features: dict[str, Column] = field(default_factory=dict)  # aligned with ``users``
    user_feature_types: dict[str, str] = field(default_factory=dict)
    entities: np.ndarray | None = None  # (E,) raw entity tokens
    relations: np.ndarray | None = None  # (R,) raw relation tokens
    kg: KGTriples | None = None
    item_entity: np.ndarray | None = None  # (I,) entity index of each item, -1 if unlinked
    sources: list[Path] = field(default_factory=list)  # files read, in order
    item_rows: int | None = None  # rows of the item file (its ids are items[:item_rows]); None without one
    # Pairs labelled negative in the data (label 0 rows: impressions without a click), per part,
    # with the file's other columns; None without any. Never interactions: the like tower's
    # negatives (train) and its AUC's (valid, test).
    train_negatives: Interactions | None = None
    valid_negatives: Interactions | None = None
    test_negatives: Interactions | None = None

    def __repr__(self) -> str:
        parts = [f"{self.n_users:,} users", f"{self.n_items:,} items",
                 f"train {len(self.train):,} / valid {len(self.valid):,} / test {len(self.test):,} ({self.split})"]  # fmt: skip
        if self.item_features:
            parts.append(f"item columns: {', '.join(self.item_features)}")
        if self.user_features:
            parts.append(f"user columns: {', '.join(self.user_features)}")
        if self.kg is not None:
            parts.append(f"KG: {len(self.kg.head):,} triples")
        return f"Dataset({self.name}: {', '.join(parts[:3])}{''.join('; ' + p for p in parts[3:])})"

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def negatives(self, part: str) -> Interactions | None:
        """The pairs of ``part`` (``train``, ``valid`` or ``test``) labelled negative in the data
        (``label`` 0 rows, a pair that has no interaction in its file), ``None`` without any."""
        return getattr(self, f"{part}_negatives")

    def negative_counts(self) -> dict[str, int]:
        """How many pairs labelled negative each part holds (``train``, ``valid``, ``test``); empty
        when the data kept none (no ``label`` column, or a split that leaves them out)."""
        parts = {part: self.negatives(part) for part in ("train", "valid", "test")}
        if all(n is None for n in parts.values()):
            return {}
        return {part: len(n) if n is not None else 0 for part, n in parts.items()}

    def interactions(self) -> Interactions:
        """All parts together (for statistics only: never train on this)."""
        return Interactions.concat([self.train, self.valid, self.test])

    def user_index(self, token: str) -> int:
        """Index of a raw user id; ``KeyError`` when unknown."""
        return self._lookup("users")[str(token)]

    def item_index(self, token: str) -> int:
        """Index of a raw item id; ``KeyError`` when unknown."""
        return self._lookup("items")[str(token)]

    def _lookup(self, name: str) -> dict[str, int]:
        cache = self.__dict__.setdefault("_lookups", {})
        if name not in cache:
            cache[name] = {token: i for i, token in enumerate(getattr(self, name))}
        return cache[name]

    def title_column(self) -> str | None:
        """The item column holding readable names, if any (:func:`find_title_column`)."""
        return find_title_column(self.item_features)

    def items_in_kg(self) -> np.ndarray:
        """``(n_items,)`` bool: which items link to an entity that occurs in the KG (as a head or
        a tail); all false without links or a KG."""
        if self.item_entity is None or self.kg is None or self.entities is None:
            return np.zeros(self.n_items, dtype=bool)
        in_kg = np.zeros(len(self.entities), dtype=bool)
        in_kg[self.kg.head] = in_kg[self.kg.tail] = True
        linked = self.item_entity >= 0
        return linked & in_kg[np.where(linked, self.item_entity, 0)]

    def item_names(self, column: str | None = None) -> list[str]:
        """A readable name per item: the title column when there is one, else the raw id."""
        column = column or self.title_column()
        if column is None:
            return [str(t) for t in self.items]
        values = self.item_features[column]
        names = []
        for token, value in zip(self.items, _as_list(values), strict=True):
            text = " ".join(value) if isinstance(value, list) else str(value)
            names.append(text if text and text != "nan" else str(token))
        return names

    def save_id_maps(self, path: str | Path) -> None:
        """Write the raw-token <-> index maps as JSON lists (position = index), atomically."""
        maps: dict[str, list[str]] = {"users": self.users.tolist(), "items": self.items.tolist()}
        if self.entities is not None and self.relations is not None:
            maps["entities"] = self.entities.tolist()
            maps["relations"] = self.relations.tolist()
        write_json(path, maps)


def load_id_maps(path: str | Path) -> dict[str, list[str]]:
    """Read maps written by :meth:`Dataset.save_id_maps`."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def dataset_name(path: str | Path) -> str:
    """The name of the dataset in folder ``path``: the folder's own (``~`` expanded; ``.`` and
    ``..`` name the folder they are)."""
    return Path(os.path.abspath(Path(path).expanduser())).name


def load_dataset(
    path: str | Path,
    split: SplitConfig | None = None,
    duplicates: DuplicateRule = "last",
    name: str | None = None,
) -> Dataset:
    """Read, validate and split a dataset folder.

    Args:
        path: the folder ``NAME/`` holding ``NAME.inter`` (or the three split files) and
            optionally ``NAME.item``, ``NAME.user``, ``NAME.kg``, ``NAME.link``.
        split: how to split ``NAME.inter``; ignored when split files are present.
        duplicates: what to do with repeated (user, item) pairs inside one interaction file:
            ``last`` keeps the latest (by timestamp, then by line), ``keep`` keeps all,
            ``error`` refuses the file. Rows with ``label`` 0 or less are no interaction and are
            left out first, so they repeat nothing.
        name: the files' stem ``NAME``; default: the folder's name.

    Raises:
        DataError: naming the file, line and column of the first problem found;
            :class:`DisjointIdsError` when files whose ids must meet share none: an item or user
            file none of whose ids is in the interactions, links none of whose entities is in the KG.
    """
    root = Path(path)
    if not root.is_dir():
        found = f"a file, not a folder ({root.parent} may be the dataset)" if root.is_file() else "dataset folder not found"
        raise DataError(f"{found} (expected a folder NAME/ holding NAME.inter ...)", root)
    name = name or dataset_name(root)
    split = split or SplitConfig()

    def file(ext: str) -> Path:
        return root / f"{name}.{ext}"

    sources: list[Path] = []

    def read(ext: str) -> AtomicTable | None:
        if not file(ext).exists():
            return None
        sources.append(file(ext))
        return read_atomic(file(ext))

    item_table, user_table = read("item"), read("user")
    given = [file(f"{part}.inter") for part in ("train", "valid", "test")]
    if all(p.exists() for p in given):
        inter_tables = [read(f"{part}.inter") for part in ("train", "valid", "test")]
    elif any(p.exists() for p in given):
        missing = ", ".join(p.name for p in given if not p.exists())
        raise DataError(f"split files are incomplete: missing {missing}; a given split needs all three (training "
                        f"selects its epoch on valid): write the missing part, or put every row in one {name}.inter "
                        f"(moving the split files away) and let kgrec split it", root)  # fmt: skip
    elif split.strategy == "given":
        raise DataError(f"split 'given' needs {name}.train.inter, {name}.valid.inter and {name}.test.inter", root)
    elif file("inter").exists():
        inter_tables = [read("inter")]
    else:
        others = sorted(p.name for p in root.glob("*.inter"))
        inside = sorted(p.parent.name for p in root.glob("*/*.inter") if p.stem.split(".")[0] == p.parent.name)
        hint = (f"; the folder holds {some_names(others)}: a dataset's files are named after its folder, so rename "
                "the folder or the files" if others else
                f"; it holds the dataset folder{'s' if len(inside) > 1 else ''} {some_names(inside)}: give "
                f"{root / inside[0]} (a dataset is the folder of its files, not RecBole's data_path above it)"
                if inside else "")  # fmt: skip
        raise DataError(f"no interactions: expected {name}.inter or {name}.train/valid/test.inter{hint}", root)

    users = _Vocab()
    items = _Vocab()
    if item_table is not None:
        item_table.require_ids("item_id")
        _check_unique(item_table, "item_id")
        items.add(item_table.tokens("item_id"))
    if user_table is not None:
        user_table.require_ids("user_id")
        _check_unique(user_table, "user_id")
        users.add(user_table.tokens("user_id"))

    loaded = [_read_interactions(t, users, items, duplicates) for t in inter_tables]  # type: ignore[arg-type]
    parts, negatives = [positives for positives, _ in loaded], [negative for _, negative in loaded]
    if item_table is not None:
        _check_rows_meet(item_table, "item", inter_tables, [part.item for part in parts], items)  # type: ignore[arg-type]
    if user_table is not None:
        _check_rows_meet(user_table, "user", inter_tables, [part.user for part in parts], users)  # type: ignore[arg-type]
    if len(parts) == 3:
        _check_given_ratings(inter_tables, parts)  # type: ignore[arg-type]
        train, valid, test = parts
        split_name = "given"
        train_neg, valid_neg, test_neg = negatives
    else:
        (all_inter,) = parts
        if split.strategy in ("temporal", "global_temporal") and all_inter.timestamp is None:
            table = inter_tables[0]
            assert table is not None
            raise DataError(f"split '{split.strategy}' orders interactions by time, and this file has no 'timestamp' "
                            f"column (header has: {table.header()}); add one, or use split ratio", table.path, line=1)  # fmt: skip
        labels = split_interactions(all_inter.user, all_inter.item, all_inter.timestamp, split)
        train, valid, test = (all_inter.select(labels == p) for p in (TRAIN, VALID, TEST))
        split_name = _describe(split)
        train_neg = valid_neg = test_neg = None
        if (negative := negatives[0]) is not None:  # each joins the part of the interactions it goes with
            positive = (all_inter.user, all_inter.item, all_inter.timestamp)
            labels = split_negatives((negative.user, negative.item, negative.timestamp), positive, labels, split)
            train_neg, valid_neg, test_neg = (negative.select(labels == p) for p in (TRAIN, VALID, TEST))

    dataset = Dataset(
        name=name,
        path=root,
        users=users.tokens(),
        items=items.tokens(),
        train=train,
        valid=valid,
        test=test,
        split=split_name,
        sources=sources,
        train_negatives=train_neg,
        valid_negatives=valid_neg,
        test_negatives=test_neg,
    )
    if item_table is not None:
        dataset.item_features, dataset.item_feature_types = _align(item_table, "item_id", items)
        dataset.item_rows = len(item_table.columns["item_id"].vocab)  # type: ignore[union-attr]
    if user_table is not None:
        dataset.user_features, dataset.user_feature_types = _align(user_table, "user_id", users)
    _attach_kg(dataset, read("kg"), read("link"), items)
    return dataset


class _Vocab:
    """Raw token -> contiguous index, in order of first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def add(self, tokens: np.ndarray) -> np.ndarray:
        """Add unseen tokens; return the index of every given token."""
        index = self.index
        return np.fromiter((index.setdefault(t, len(index)) for t in tokens), dtype=np.int64, count=len(tokens))

    def encode(self, column: TokenColumn) -> np.ndarray:
        """Index of every row of a dictionary-encoded column (adds unseen tokens)."""
        return self.add(column.vocab)[column.codes]

    def tokens(self) -> np.ndarray:
        return np.asarray(list(self.index), dtype=object)


def _check_unique(table: AtomicTable, column: str) -> None:
    codes = table.columns[column].codes  # type: ignore[union-attr]
    counts = np.bincount(codes)
    if (counts > 1).any():
        dup = int(np.flatnonzero(counts > 1)[0])
        rows = np.flatnonzero(codes == dup)
        token = table.columns[column].vocab[dup]  # type: ignore[union-attr]
        raise RepeatedIdError(token, table.line(int(rows[0])), table.path, table.line(int(rows[1])), f"{column}:token")


def _check_given_ratings(tables: list[AtomicTable], parts: list[Interactions]) -> None:
    """Refuse a given split whose training file has a rating column that its valid or test file
    lacks. The rating and like towers (on by default with training ratings) learn from the
    training ratings and are measured on the other parts' (RMSE, MAE, AUC): without them a run
    selecting its epoch on ``eval.monitor`` rmse, mae or auc stopped after its first epoch on a bare
    ``KeyError``, and any other run reported no rating or like metric at all, without saying why."""
    if parts[0].rating is None:
        return  # no training ratings: the rating and like towers are off, valid / test ratings unused
    lacking = [table for table, part in zip(tables[1:], parts[1:], strict=True) if part.rating is None]
    if not lacking:
        return
    first, train = lacking[0], tables[0]
    also = f" (nor has {lacking[1].path.name})" if len(lacking) > 1 else ""
    raise DataError(
        f"no 'rating' column (header has: {first.header()}){also}, though {train.path.name} has one: the rating "
        f"and like towers learn from the training ratings and are measured on valid's and test's (RMSE, AUC; "
        f"eval.monitor rmse, mae or auc chooses the epoch on valid's); add a rating:float column to "
        f"{' and '.join(t.path.name for t in lacking)}, or remove it from {train.path.name} to train without "
        "those towers",
        first.path,
        1,
    )


def _check_rows_meet(
    table: AtomicTable, kind: str, inter_tables: list[AtomicTable], interacted: list[np.ndarray], vocab: _Vocab
) -> None:
    """Refuse an item (``kind="item"``) or user file none of whose ids occurs in the interactions
    (``M000`` rows, ``m000`` interactions): its columns would describe items no one interacted
    with, or users who never interacted. Some interacting ids without a row are fine (they have
    no columns), and so are extra rows. ``interacted``: each part's indices of that kind."""
    column = f"{kind}_id"
    n_rows = len(table.columns[column].vocab)  # type: ignore[union-attr]  # its ids come first in ``vocab``
    if n_rows == 0 or any((indices < n_rows).any() for indices in interacted):
        return
    tokens = vocab.tokens()
    rows = IdSide(table.path, (f"{column}:token",), tokens[:n_rows], f"the {kind} file")
    others = IdSide(inter_tables[0].path, (f"{column}:token",), tokens[n_rows:], "the interactions")
    raise DisjointIdsError(rows, others, f"{kind} ids")


def _read_interactions(
    table: AtomicTable, users: _Vocab, items: _Vocab, rule: DuplicateRule
) -> tuple[Interactions, Interactions | None]:
    """The file's interactions and its pairs labelled negative: rows with
    ``label`` 0 or less whose (user, item) pair has no interaction in the file, one row per pair
    (the latest); ``None`` without any."""
    table.require_ids("user_id", "item_id")
    if table.n_rows == 0:
        raise DataError("no interactions: the file has a header but no rows", table.path, line=1)
    user = users.encode(table.columns["user_id"])  # type: ignore[arg-type]
    item = items.encode(table.columns["item_id"])  # type: ignore[arg-type]
    rating = _float_column(table, "rating")
    timestamp = _float_column(table, "timestamp")
    label = _float_column(table, "label")  # RecBole's click label: 0 marks a row that is no interaction
    for name, values in (("rating", rating), ("timestamp", timestamp), ("label", label)):
        bad = ~np.isfinite(values) if values is not None else None
        if bad is not None and bad.any():
            row = int(np.flatnonzero(bad)[0])
            found = "empty or NaN" if np.isnan(values[row]) else values[row]  # type: ignore[index]
            raise DataError(f"{name} is {found}: expected a finite number", table.path, table.line(row), f"{name}:float")
    held = None
    if rating is not None:  # held as float32, where a finite float64 may become inf
        with np.errstate(over="ignore"):
            held = rating.astype(np.float32)
        if np.isinf(held).any():
            row = int(np.flatnonzero(np.isinf(held))[0])
            raise DataError(f"rating is {rating[row]:g}, beyond the range of a float32 rating (+-{RATING_MAX:.2g}): "
                            "expected a finite number", table.path, table.line(row), "rating:float")  # fmt: skip
    inter = Interactions(user, item, held, timestamp)
    # Rows with label 0 are no interaction, so they go first: a (user, item) pair's click followed
    # by a later impression without one is the click, not a repeat that replaces it.
    rows = _positive_rows(table, label)
    everything = inter
    if rows is not None:
        inter = inter.select(rows)
    kept = _deduplicated_rows(table, inter, rule, rows)
    inter = inter if kept is None else inter.select(kept)
    if rows is None:
        return inter, None
    negative = everything.select(np.setdiff1d(np.arange(len(everything)), rows, assume_unique=True))
    n = max(len(items.index), 1)  # a pair as one number: user * n_items + item
    clicked = np.isin(negative.user * n + negative.item, inter.user * n + inter.item)
    negative = negative.select(np.flatnonzero(~clicked))
    once = _deduplicated_rows(table, negative, "last", None)  # one row per pair
    return inter, negative if once is None else negative.select(once)


def _deduplicated_rows(table: AtomicTable, inter: Interactions, rule: DuplicateRule, rows: np.ndarray | None) -> np.ndarray | None:
    """The rows of ``inter`` that ``rule`` keeps of repeated (user, item) pairs, ``None`` for all
    of them. ``rows``: the file's data row of each of ``inter``'s (``None``: the same)."""
    if rule == "keep":
        return None
    user, item, timestamp = inter.user, inter.item, inter.timestamp
    # Order rows by (user, item, timestamp, line) so the last of each pair is the one to keep.
    keys = [np.arange(len(user))] + ([timestamp] if timestamp is not None else []) + [item, user]
    order = np.lexsort(keys)
    u, i = user[order], item[order]
    last_of_pair = np.r_[(u[1:] != u[:-1]) | (i[1:] != i[:-1]), True]
    if last_of_pair.all():
        return None
    if rule == "error":
        _refuse_repeated_pair(table, inter, rows)
    return np.sort(order[last_of_pair])


def _refuse_repeated_pair(table: AtomicTable, inter: Interactions, rows: np.ndarray | None) -> None:
    """Raise a :class:`DataError` at the first line that repeats an earlier line's (user, item)
    pair, naming the pair and that earlier line."""
    user, item = inter.user, inter.item
    order = np.lexsort((np.arange(len(user)), item, user))  # by pair, then by line
    u, i = user[order], item[order]
    again = np.r_[False, (u[1:] == u[:-1]) & (i[1:] == i[:-1])]
    starts = np.maximum.accumulate(np.where(again, 0, np.arange(len(order))))  # each position's pair's first
    at = int(np.flatnonzero(again)[np.argmin(order[again])])  # the repeat that comes first in the file
    row, first = int(order[at]), int(order[starts[at]])
    if rows is not None:
        row, first = int(rows[row]), int(rows[first])
    pair = [table.columns[c].vocab[table.columns[c].codes[row]] for c in ("user_id", "item_id")]  # type: ignore[union-attr]
    raise DataError(
        f"repeated (user_id, item_id) pair ('{pair[0]}', '{pair[1]}'), first on line {table.line(first)}: expected one "
        "row per pair; pass duplicates='last' or 'keep' to accept it",
        table.path,
        table.line(row),
    )


def _positive_rows(table: AtomicTable, label: np.ndarray | None) -> np.ndarray | None:
    """The rows of ``table`` whose ``label`` is above 0 (``None``: all, as without a label): in
    RecBole's CTR files (``label:float``) a row with label 0 is an impression without a click, no
    interaction; a :class:`~kgrec.errors.DataWarning` says how many there are and that they are
    the like tower's negatives (every row had counted as an interaction, without a word)."""
    if label is None:
        return None
    positive = label > 0
    if not positive.any():
        raise DataError("every row has label 0 or less, so there is no interaction: label marks RecBole's "
                        "negatives (impressions without a click); keep the rows with label 1", table.path, 1, "label:float")  # fmt: skip
    if positive.all():
        return None
    warnings.warn(f"{table.path}: {int((~positive).sum()):,} of {len(positive):,} rows have label 0 or less "
                  "(RecBole's negatives: impressions without a click) and are no interactions: the like tower "
                  "learns them as negatives and its AUC counts them; the others are the "
                  "interactions", DataWarning, stacklevel=2)  # fmt: skip
    return np.flatnonzero(positive)


def _float_column(table: AtomicTable, name: str) -> np.ndarray | None:
    if name not in table.types:
        return None
    if table.types[name] != "float":
        raise DataError(f"expected type float, found {table.types[name]}", table.path, 1, f"{name}:{table.types[name]}")
    return table.columns[name]  # type: ignore[return-value]


def _align(table: AtomicTable, id_column: str, vocab: _Vocab) -> tuple[dict[str, Column], dict[str, str]]:
    """Feature columns re-ordered so row ``k`` belongs to entity index ``k`` (gaps filled)."""
    rows = vocab.encode(table.columns[id_column])  # type: ignore[arg-type]
    n = len(vocab.index)
    features: dict[str, Column] = {}
    types: dict[str, str] = {}
    for name, kind in table.types.items():
        if name == id_column:
            continue
        column = table.columns[name]
        if kind == "token":
            out = np.full(n, "", dtype=object)
            out[rows] = column.values()  # type: ignore[union-attr]
        elif kind == "float":
            out = np.full(n, np.nan)
            out[rows] = column
        else:
            out = [[] if kind == "token_seq" else np.zeros(0) for _ in range(n)]
            for row, value in zip(rows.tolist(), column, strict=True):  # type: ignore[arg-type]
                out[row] = value
        features[name] = out
        types[name] = kind
    return features, types


def _attach_kg(dataset: Dataset, kg: AtomicTable | None, link: AtomicTable | None, items: _Vocab) -> None:
    if kg is None and link is None:
        return
    entities, relations = _Vocab(), _Vocab()
    if kg is not None:
        kg.require_ids("head_id", "relation_id", "tail_id")
        if kg.n_rows == 0:
            raise DataError("no triples: the file has a header but no rows", kg.path, line=1)
        dataset.kg = KGTriples(
            head=entities.encode(kg.columns["head_id"]),  # type: ignore[arg-type]
            relation=relations.encode(kg.columns["relation_id"]),  # type: ignore[arg-type]
            tail=entities.encode(kg.columns["tail_id"]),  # type: ignore[arg-type]
        )
    if link is not None:
        link.require_ids("item_id", "entity_id")
        known = items.index
        link_items = link.tokens("item_id")
        for row, token in enumerate(link_items):
            if token not in known:
                raise DataError(
                    f"item '{token}' is not an item of the dataset (not in .item nor in the interactions)",
                    link.path,
                    link.line(row),
                    "item_id:token",
                )
        item_index = np.fromiter((known[t] for t in link_items), dtype=np.int64, count=len(link_items))
        n_kg = len(entities.index)  # the KG's entities come first
        entity_index = entities.encode(link.columns["entity_id"])  # type: ignore[arg-type]
        if kg is not None and link.n_rows and not (entity_index < n_kg).any():
            _refuse_links_off_the_kg(link, kg, entities.tokens()[:n_kg])
        item_entity = np.full(dataset.n_items, -1, dtype=np.int64)
        for row, (i, e) in enumerate(zip(item_index.tolist(), entity_index.tolist(), strict=True)):
            if item_entity[i] not in (-1, e):
                raise DataError(
                    f"item '{link_items[row]}' is linked to a second entity; expected one entity per item",
                    link.path,
                    link.line(row),
                    "entity_id:token",
                )
            item_entity[i] = e
        dataset.item_entity = item_entity
    dataset.entities = entities.tokens()
    dataset.relations = relations.tokens()


def _refuse_links_off_the_kg(link: AtomicTable, kg: AtomicTable, kg_entities: np.ndarray) -> None:
    """Raise :class:`DisjointIdsError`: no entity of ``link`` is a head or tail of ``kg``, so
    every link would join its item to an entity with no triple."""
    linked = IdSide(link.path, ("entity_id:token",), link.columns["entity_id"].vocab, "the link file")  # type: ignore[union-attr]
    raise DisjointIdsError(linked, IdSide(kg.path, ("head_id:token", "tail_id:token"), kg_entities, "the KG"), "entities")


def _as_list(column: Column) -> list:
    if isinstance(column, TokenColumn):
        return column.values().tolist()
    return column.tolist() if isinstance(column, np.ndarray) else column


def _describe(split: SplitConfig) -> str:
    if split.strategy == "ratio":
        return f"ratio{tuple(split.ratios)} seed={split.seed}"
    if split.strategy == "cold_item":
        return f"cold_item(share={split.cold_item_share}) seed={split.seed}"
    if split.strategy == "global_temporal":
        return f"global_temporal{tuple(split.ratios)}"
    return "temporal(leave-last-out)"
