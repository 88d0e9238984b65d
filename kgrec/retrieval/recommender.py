r"""Queries on a trained run: recommend, similar items, text search, new users, catalog changes.

``rec = Recommender.open("runs/ml-100k")`` loads the run (:func:`kgrec.train.saved.load_run`),
its catalog (:mod:`kgrec.retrieval.catalog`) and its FAISS index (``RUN_DIR/index/``, built on
first use when missing, refused when it does not match the run). Every query returns a list
of :class:`Result` (``item_id``, ``title``, ``score``, ``explanation``), best first.

Query vectors, in the retrieval tower's space (except ``search``'s), scored by the inner product
:math:`s(\mathbf{q}, \mathbf{x}_i) = \langle \mathbf{q}, \mathbf{x}_i \rangle` or its cosine:

* ``recommend(user)``: the trained user vector :math:`\mathbf{u}` (``vectors.safetensors``).
* ``search(text)``: the text is encoded by the run's text encoder, :math:`\mathbf{t} =
  \mathrm{enc}(text)`, and items are ranked by the cosine with the encoder's vectors of their
  own text, :math:`\langle \hat{\mathbf{t}}, \hat{\mathbf{t}}_i \rangle` (``text.safetensors``;
  an exact flat index over them, built on first use). This is a text match, not a
  recommendation: on ml-100k, genre queries found their genre twice as often this way as
  through the model's text pathway (:math:`\mathrm{cold\_item\_vectors}` on both sides), which
  keeps what mattered for recommendation rather than the words, and a title query put its
  item first for 98.6% of the titles against 0.3% (``scripts/bench_coldstart.py`` prints the
  measurement).
* ``similar(item)``: the cosine of retrieval vectors centred on the trained items' mean
  :math:`\bar{\mathbf{x}}`, :math:`\cos(\mathbf{x}_q - \bar{\mathbf{x}}, \mathbf{x}_i -
  \bar{\mathbf{x}})`; the item itself is left out. Inner products would favour popular items
  whatever the query; the plain cosine is dominated by the direction all items share. Centred,
  the list for one of a user's liked training items held 9-26% more of their held-out items
  than the plain cosine on ml-100k, MovieLens-1M and Book-Crossing, also with each hit weighted
  by :math:`1/\sqrt{\mathrm{popularity}}` (``scripts/bench_similar.py``). For an item added
  after training, whose vector no interaction shaped, the cosine is blended with the text
  encoder's (:meth:`Recommender._similar_to_added_item`).
* ``recommend_for_new_user(liked=..., likes_text=...)``: when the model's user encoder has a
  ``history`` part, the model's own pathway with the liked items as the history (a text counts
  as one more liked item: the mean of the :data:`TEXT_FEEDBACK_ITEMS` trained items whose own
  text ``search(text)`` ranks first), :math:`\mathbf{u} = \mathrm{Tower}(\mathrm{Trunk}_{user}(\frac{1}{|L| + k}
  (\sum_{i \in L} \mathbf{h}_i + k \bar{\mathbf{h}})))` (no ID part: the user has none), the history
  shrunk toward the mean training user :math:`\bar{\mathbf{h}}` with the weight :math:`k` under
  which training users posing as new users rank their valid items best
  (:meth:`Recommender.new_user_prior`, :mod:`kgrec.retrieval.new_users`; :math:`k = 0` is the
  plain mean; an item added after training counts as one liked item shared by the
  :data:`TEXT_FEEDBACK_ITEMS` trained items ``similar(item)`` ranks first). With an ID-only
  user encoder, a fold-in: the
  user vector that best explains the liked items under a softmax over
  the frozen item vectors (:meth:`Recommender.fold_in`), the text counting as one liked item
  shared by the :data:`TEXT_FEEDBACK_ITEMS` items ``search(text)`` ranks first (pseudo-relevance
  feedback). Ranked by the inner product, like a trained user.

Cosine queries run on the same index: the query is normalised (after centring, for
``similar``), and the index's inner-product candidates (over-fetched) are re-scored by cosine;
catalogs of up to :data:`EXACT_SUBSET_MAX` items are scored exactly.

Exclusions and filters: ``recommend`` leaves out every item the user interacted with (train,
valid and test parts of the dataset) unless ``exclude_seen=False``; ``where`` (``class=Comedy``:
token equality, token_seq membership) and ``exclude`` apply to every query. The index is
searched for ``k`` + the number of excluded items, doubling while a row has fewer than ``k``
qualifying items; a restrictive filter (at most :data:`EXACT_SUBSET_MAX` items qualify) or an
exhausted index is answered by exact scoring of the qualifying items, so a query returns
exactly ``k`` results whenever ``k`` items qualify.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from kgrec.errors import IndexOutOfDateError, KgrecError, NotFoundError, RetrievalError
from kgrec.retrieval.catalog import CATALOG_DIR, Catalog, Filter
from kgrec.retrieval.coldstart import (
    PATHWAYS,
    embed_new_items,
    empty_row_notes,
    graph_notes,
    pathway_notes,
    read_new_items,
)
from kgrec.retrieval.explain import Explainer, Explanation, HistoryItem, liked_users
from kgrec.retrieval.index import IndexConfig, VectorIndex, load_index
from kgrec.retrieval.new_users import PriorChoice, choose_history_prior
from kgrec.retrieval.predict import Prediction, tower_predictions
from kgrec.utils.io import exclusive_lock, restore_interrupted_dir, sha256_file

if TYPE_CHECKING:
    from kgrec.text import TextEncoder
    from kgrec.train.saved import LoadedRun

INDEX_DIR = "index"
EXACT_SUBSET_MAX = 65_536
COSINE_OVERFETCH = 8  # cosine queries re-score this many times k inner-product candidates
TEXT_FEEDBACK_ITEMS = 10  # a new user's text stands for the items it matches best
FOLD_IN_STEPS = 100
FOLD_IN_L2 = 1e-3
FOLD_IN_NEGATIVES = 200_000
# similar() of an item added after training: this weight on the centred model cosine, the rest on
# the text encoder's cosine (chosen on the valid half of scripts/bench_coldstart.py's new items)
NEW_ITEM_SIMILAR_MODEL_WEIGHT = 0.25


Ids = str | int | Iterable[str | int]  # raw ids (an item's title serves too: Catalog.position): several, or one
Filters = Filter | str | Sequence[Filter | str]  # ``where``: several filters, or one


def _ids(values: Ids | None) -> list[str]:
    """Raw ids as a list: a plain string (or integer) is one id, not the characters of one;
    ``None`` is none."""
    if values is None:  # none given (exclude=None), as the default () says
        return []
    return [str(values)] if isinstance(values, (str, numbers.Integral)) else [str(v) for v in values]


def _known(lookup: Callable[[str], int], token: str) -> int:
    """``lookup(token)``, or of ``token`` without surrounding spaces (``" 196"`` pasted from a
    table, as batch files' lines are read); ``KeyError`` when neither is known."""
    try:
        return lookup(token)
    except KeyError:
        return lookup(token.strip())


def _filters(where: Filters | None) -> list[Filter | str]:
    """``where`` as a list: one filter (``"class=Comedy"``) or several; ``None`` is none."""
    if where is None:  # no filter (where=None), as the default () says
        return []
    return [where] if isinstance(where, (str, Filter)) else list(where)


def _catalog_stamp(run_dir: Path) -> tuple[int, int, int] | None:
    """Inode, modification time and size of ``RUN_DIR/catalog/catalog.json`` (None: no changes
    saved): every save swaps in a new file, so a different stamp means another save."""
    return _file_stamp(run_dir / CATALOG_DIR / "catalog.json")


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """Inode, modification time and size of ``path``; ``None`` when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest of ``scores`` ``(m,)``, best first."""
    kk = min(k, len(scores))
    top = np.argpartition(-scores, kk - 1)[:kk] if kk < len(scores) else np.arange(len(scores))
    return top[np.argsort(-scores[top], kind="stable")]


@dataclass(frozen=True)
class Result:
    """One returned item.

    Attributes:
        item_id: the raw item token.
        title: its display name.
        score: the query's score (inner product for users, cosine for items and text).
        explanation: why it was returned (``None`` when ``explain=False``).
    """

    item_id: str
    title: str
    score: float
    explanation: Explanation | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON (``--json``, batch lines, the HTTP answers)."""
        return {
            "item_id": self.item_id,
            "title": self.title,
            "score": round(self.score, 6),
            "explanation": self.explanation.to_dict() if self.explanation is not None else None,
        }


class AddedIds(list[str]):
    """The ids :meth:`Recommender.add_items` added, with ``notes``: what it did that the user may
    not expect (relations left out, links to nothing, items the graph pathway could not reach)."""

    def __init__(self, ids: Iterable[str] = (), notes: Sequence[str] = ()) -> None:
        super().__init__(ids)
        self.notes = list(notes)


@dataclass
class WarmUp:
    """What :meth:`Recommender.warm_up` did: ``seconds`` per query kind answered, and ``errors``,
    why each other kind failed."""

    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        done = ", ".join(f"{kind} {s:.2f} s" for kind, s in self.seconds.items())
        failed = "".join(f"; {kind} failed: {why}" for kind, why in self.errors.items())
        return f"{sum(self.seconds.values()):.1f} s ({done}){failed}"


class Recommender:
    """Nearest-neighbour queries over one trained run (see the module docstring).

    Build with :meth:`open`. Attributes: ``run`` (the :class:`~kgrec.train.saved.LoadedRun`),
    ``catalog``, ``index`` (a :class:`~kgrec.retrieval.index.VectorIndex`), ``explainer``.
    """

    def __init__(self, run: LoadedRun, catalog: Catalog, user_vectors: np.ndarray, vectors_sha256: str) -> None:
        self.run = run
        self.path = Path(run.path)
        self.catalog = catalog
        self.user_vectors = np.ascontiguousarray(user_vectors, dtype=np.float32)  # (U, d)
        self.vectors_sha256 = vectors_sha256
        # similar()'s centre: the trained items' mean vector, which added or removed items leave as is
        self.item_centre = catalog.vectors[: catalog.n_base].mean(0).astype(np.float32)  # (d,)
        self.index: VectorIndex | None = None
        self._index_error: str | None = None  # why ``index`` is None after a failed catalog change
        self._index_tried: tuple[int, int, int] | None = None  # the saved index manifest found stale since
        self._explainer: Explainer | None = None
        self._liked_by: list[np.ndarray] | None = None  # per trained item, its training users who liked it
        self._encoder: TextEncoder | None = None
        self._encoded: Any = None  # the model's encode() (_model_encoded), for new users and predict
        self._prior: PriorChoice | None = None
        self._text_index: tuple[VectorIndex, np.ndarray, np.ndarray] | None = None
        self._seen_index: tuple[np.ndarray, np.ndarray] | None = None
        self._trained_users: np.ndarray | None = None  # (U,) bool: users with a training interaction
        self._history_index: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self._catalog_stamp = _catalog_stamp(self.path)  # the saved catalog this object holds

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        run_dir: str | Path,
        *,
        data: str | Path | None = None,
        index: IndexConfig | str | None = None,
        build_missing: bool = True,
        rebuild: bool = False,
    ) -> Recommender:
        """Load a run folder and its index.

        Args:
            run_dir: a folder written by :func:`kgrec.train.train`.
            data: the dataset folder, when it moved since training.
            index: the index to build when none is saved (an :class:`IndexConfig` or a kind;
                default ``auto``). A saved index is used as it is.
            build_missing: build (and save) the index when ``RUN_DIR/index`` is missing;
                ``False`` raises instead.
            rebuild: build (and save) a new index with ``index`` whatever is saved (what
                ``kgrec index build`` does; repairs a mismatched index).

        Raises:
            RetrievalError: the run has no retrieval vectors, or its saved index does not
                match its vectors.
            KgrecError: not a run folder, or its dataset is gone or changed.
        """
        from safetensors.numpy import load_file

        from kgrec.train.saved import check_run_files, load_run, read_manifest

        run_dir = Path(run_dir)
        check_run_files(run_dir, read_manifest(run_dir))
        vectors_file = run_dir / "vectors.safetensors"
        if not vectors_file.is_file():
            raise RetrievalError(
                f"{run_dir}: no vectors.safetensors, so nothing to search: the model was trained without the "
                "retrieval tower; retrain with 'retrieval' in model.tasks"
            )
        try:
            vectors = load_file(str(vectors_file))
        except Exception as error:  # safetensors raises its own types for corrupt files
            raise RetrievalError(f"{vectors_file}: cannot read it ({error})") from None
        if "item" not in vectors or "user" not in vectors:
            raise RetrievalError(f"{vectors_file}: expected 'user' and 'item' vectors, found {sorted(vectors)}")
        run = load_run(run_dir, data)
        sha = sha256_file(vectors_file)
        titles = [str(n) for n in run.graph.names[: run.dataset.n_items]] if run.graph is not None else None
        text_dim = run.text.shape[1] if run.text is not None else 0
        catalog = Catalog.load(run_dir, run.dataset, vectors["item"], sha, titles, text_dim)  # graph names: "Title (1977)"
        if vectors["user"].shape[0] != run.dataset.n_users:
            raise RetrievalError(
                f"{vectors_file}: {vectors['user'].shape[0]} user vectors, the dataset has {run.dataset.n_users} users"
            )
        rec = cls(run, catalog, vectors["user"], sha)
        config = IndexConfig(kind=index) if isinstance(index, str) else index
        rec.index = rec.build_index(config) if rebuild else rec._open_index(config, build_missing)
        return rec

    @property
    def index_dir(self) -> Path:
        """``RUN_DIR/index/``: the saved FAISS index and its manifest."""
        return self.path / INDEX_DIR

    def _expected(self) -> dict[str, Any]:
        return {
            "dim": self.catalog.dim,
            "count": self.catalog.n_active,
            **self.catalog.checksums(),
            "run": {"vectors_sha256": self.vectors_sha256},
        }

    def _open_index(self, config: IndexConfig | None, build_missing: bool) -> VectorIndex:
        restore_interrupted_dir(self.index_dir)  # a crash mid-save: the saved index, not a new default one
        if not (self.index_dir / "manifest.json").is_file():
            if not build_missing:
                raise RetrievalError(f"{self.path}: no index yet; build one with `kgrec index build {self.path}`")
            return self.build_index(config)
        index, _ = load_index(
            self.index_dir, self._expected(), hint=f"rebuild it with `kgrec index build {self.path}`"
        )
        return index

    def build_index(self, config: IndexConfig | None = None, save: bool = True) -> VectorIndex:
        """(Re)build the index over the active catalog and save it to ``RUN_DIR/index`` (atomically)."""
        ids = self.catalog.active_ids()
        if len(ids) == 0:
            raise RetrievalError(f"{self.path}: every item was removed; nothing to index")
        index = VectorIndex.build(self.catalog.vectors[ids], ids, config)
        if save:
            self._save_index(index)
        self.index = index
        self._index_error = None
        return index

    @property
    def index_error(self) -> str | None:
        """Why queries are refused (a catalog change whose index update failed), else ``None``."""
        return self._index_error

    def _require_index(self) -> VectorIndex:
        if self.index is None:
            if self._index_error is not None:
                raise IndexOutOfDateError(self._index_error)
            raise RetrievalError("no index loaded")
        return self.index

    def _save_index(self, index: VectorIndex) -> None:
        expected = self._expected()
        extra = {
            "ids_sha256": expected["ids_sha256"],
            "run": {
                "path": str(self.path.resolve()),
                "vectors_sha256": self.vectors_sha256,
                "dataset": self.run.dataset.name,
                "split": self.run.dataset.split,
                "added_items": len(self.catalog.added),
                "removed_items": len(self.catalog.removed_tokens()),
            },
        }
        ids = self.catalog.active_ids()
        # ids.json: FAISS id -> raw item token, for readers of the index without kgrec
        files = {"ids.json": {"ids": ids.tolist(), "item_ids": [self.catalog.tokens[i] for i in ids]}}
        index.save(self.index_dir, expected["vectors_sha256"], extra, files)

    @property
    def explainer(self) -> Explainer:
        """The run's :class:`~kgrec.retrieval.explain.Explainer`, built on first use."""
        if self._explainer is None:
            threshold = float(self.run.config.model.like_threshold)
            train = self.run.dataset.train
            if self._liked_by is None:  # kept across catalog changes: training does not change
                self._liked_by = liked_users(train.user, train.item, train.rating, self.catalog.n_base, threshold)
            attention = None  # a KGAT encoder's per-edge attention orders the shared neighbours
            kgat = self.run.config.model.graph_kind == "kgat" and self.run.graph is not None  # (the model is built only then)
            if kgat and (weights := self.run.model.graph_attention()) is not None:
                (source, target), alpha = weights
                attention = (source.cpu().numpy(), target.cpu().numpy(), alpha.cpu().numpy())
            self._explainer = Explainer(
                self.run.graph,
                self.catalog,
                like_threshold=threshold,
                centre=self.item_centre,
                liked_by=self._liked_by,
                liked_verb="liked" if train.rating is not None else "interacted with",
                attention=attention,
            )
        return self._explainer

    # ------------------------------------------------------------------ validation helpers
    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise RetrievalError(f"k must be a positive integer, got {k!r}")
        if k > self.catalog.n_active:
            raise RetrievalError(f"k={k} is larger than the catalog ({self.catalog.n_active} items)")
        return int(k)

    def trained_users(self) -> list[str]:
        """Raw ids of the users :meth:`recommend` serves: those with a training interaction, in
        dataset order (for batch scoring of every user: ``kgrec recommend RUN --all-users``)."""
        return [str(self.run.dataset.users[i]) for i in np.flatnonzero(self._trained_mask())]

    def _trained_mask(self) -> np.ndarray:
        """``(U,)`` bool: the users with a training interaction."""
        if self._trained_users is None:
            self._trained_users = self.run.dataset.train.has_user(self.run.dataset.n_users)
        return self._trained_users

    def user_index(self, user: str) -> int:
        """Dataset index of a raw user id; :class:`NotFoundError` when the run does not know it,
        or knows it only from valid/test interactions (nothing of the user was trained)."""
        try:
            index = _known(self.run.dataset.user_index, str(user))
        except KeyError:
            examples = ", ".join(str(u) for u in self.run.dataset.users[:3])
            raise NotFoundError(
                f"unknown user '{user}': not one of the {self.run.dataset.n_users} users of this run "
                f"(raw user ids, e.g. {examples}); for a new user, recommend from the items they like or a text "
                f"(kgrec recommend --liked / --likes-text; Recommender.recommend_for_new_user)"
            ) from None
        if not self._trained_mask()[index]:
            raise NotFoundError(
                f"user '{user}' has no training interactions in this run (the split put all of them in valid or "
                f"test, e.g. a user first seen after a global time split's cut), so the model learned nothing of "
                f"them; recommend for them as for a new user, from the items they like or a text (kgrec recommend "
                f"--liked / --likes-text; Recommender.recommend_for_new_user)"
            )
        return index

    def _allowed(self, where: Filters, exclude: Ids) -> np.ndarray:
        mask = self.catalog.where_mask(_filters(where))
        for token in _ids(exclude):
            mask[self.catalog.position(token, allow_removed=True)] = False
        return mask

    def seen_items(self, user: int) -> np.ndarray:
        """Catalog positions of every item ``user`` interacted with (all parts of the dataset)."""
        if self._seen_index is None:
            ds = self.run.dataset
            users = np.concatenate([ds.train.user, ds.valid.user, ds.test.user])
            items = np.concatenate([ds.train.item, ds.valid.item, ds.test.item])
            order = np.argsort(users, kind="stable")
            indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=ds.n_users))])
            self._seen_index = (indptr, items[order])
        indptr, items = self._seen_index
        return np.unique(items[indptr[user] : indptr[user + 1]])

    def history(self, user: int) -> list[HistoryItem]:
        """The user's training interactions (with ratings when the data has them)."""
        if self._history_index is None:
            train = self.run.dataset.train
            order = np.argsort(train.user, kind="stable")
            indptr = np.concatenate([[0], np.cumsum(np.bincount(train.user, minlength=self.run.dataset.n_users))])
            ratings = train.rating[order] if train.rating is not None else None
            self._history_index = (indptr, train.item[order], ratings)
        indptr, items, ratings = self._history_index
        lo, hi = indptr[user], indptr[user + 1]
        return [
            HistoryItem(int(i), float(ratings[lo + j]) if ratings is not None else None)
            for j, i in enumerate(items[lo:hi])
            if self.catalog.active[i]
        ]

    # ------------------------------------------------------------------ core search
    def search_vectors(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        excluded: Sequence[np.ndarray] | None = None,
        cosine: bool = False,
        centre: np.ndarray | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``k`` best catalog positions and their scores for each query row ``(B, d)``.

        ``allowed`` ``(n,)`` bool limits the candidates (default: the active items); ``excluded``
        gives per row positions to leave out. With ``cosine``, scores are cosines, of the
        vectors minus ``centre`` ``(d,)`` when given (queries and items alike). Rows return fewer
        than ``k`` only when fewer items qualify.
        """
        return self._search(
            self._require_index(), self.catalog.vectors, queries, k, allowed, excluded, cosine, centre
        )

    def _search(
        self,
        index: VectorIndex,
        vectors: np.ndarray,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None,
        excluded: Sequence[np.ndarray] | None,
        cosine: bool,
        centre: np.ndarray | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        b = len(queries)
        if cosine:
            if centre is not None:
                queries = queries - centre
            queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        # <q, x - c> = <q, x> - <q, c>: the index's inner products, shifted per query row
        shift = queries @ centre if cosine and centre is not None else np.zeros(b, np.float32)
        allowed = self.catalog.active.copy() if allowed is None else allowed & self.catalog.active
        excluded = list(excluded) if excluded is not None else [np.zeros(0, np.int64)] * b
        n_allowed = int(allowed.sum())
        if n_allowed == 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(b)]
        filtered = n_allowed < index.count
        if (filtered and n_allowed <= EXACT_SUBSET_MAX) or (cosine and index.count <= EXACT_SUBSET_MAX):
            return self._exact(vectors, queries, k, np.flatnonzero(allowed), excluded, cosine, centre)
        results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * b
        most_excluded = max((len(e) for e in excluded), default=0)
        fetch = k * (COSINE_OVERFETCH if cosine else 1) + most_excluded
        if filtered:
            fetch = int(math.ceil(fetch * index.count / n_allowed * 1.5)) + 8
        pending = np.arange(b)
        total = index.count
        approximate = index.kind == "ivfpq" and not index.config.refine
        while len(pending):
            fetch = min(fetch, total)
            scores, ids = index.search(queries[pending], fetch)
            still = []
            for row, s, i in zip(pending, scores, ids, strict=True):
                ok = i >= 0
                ok[ok] = allowed[i[ok]]
                if len(excluded[row]):
                    ok &= ~np.isin(i, excluded[row])
                got, got_s = i[ok], s[ok]
                if approximate:  # PQ codes' scores are approximate; the catalog holds the exact vectors
                    got_s = vectors[got] @ queries[row]
                    order = np.argsort(-got_s, kind="stable")
                    got, got_s = got[order], got_s[order]
                if cosine:
                    shifted = vectors[got] - centre if centre is not None else vectors[got]
                    got_s = (got_s - shift[row]) / np.maximum(np.linalg.norm(shifted, axis=1), 1e-12)
                    order = np.argsort(-got_s, kind="stable")
                    got, got_s = got[order], got_s[order]
                if len(got) >= k and (not cosine or len(got) >= min(n_allowed, k * COSINE_OVERFETCH)):
                    results[row] = (got[:k], got_s[:k])
                elif fetch >= total:
                    results[row] = self._exact(
                        vectors, queries[row : row + 1], k, np.flatnonzero(allowed), [excluded[row]], cosine, centre
                    )[0]
                else:
                    still.append(row)
            pending = np.asarray(still, dtype=np.int64)
            fetch *= 2
        return results  # type: ignore[return-value]

    def _exact(
        self,
        vectors: np.ndarray,
        queries: np.ndarray,
        k: int,
        subset: np.ndarray,
        excluded: Sequence[np.ndarray],
        cosine: bool,
        centre: np.ndarray | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Exact top-``k`` over catalog positions ``subset`` (one matrix product per 1024 rows);
        ``queries`` come normalised (and centred) when ``cosine``."""
        vectors = vectors[subset]  # (m, d)
        if cosine:
            if centre is not None:
                vectors = vectors - centre
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        local = np.full(len(self.catalog), -1, dtype=np.int64)
        local[subset] = np.arange(len(subset))
        out = []
        for start in range(0, len(queries), 1024):
            scores = queries[start : start + 1024] @ vectors.T  # (B, m)
            for r, row in enumerate(scores):
                drop = local[excluded[start + r]] if len(excluded[start + r]) else np.zeros(0, np.int64)
                row[drop[drop >= 0]] = -np.inf
                top = _top_k(row, k)
                top = top[np.isfinite(row[top])]
                out.append((subset[top], row[top].astype(np.float32)))
        return out

    def _results(
        self, positions: np.ndarray, scores: np.ndarray, explain: Any | None
    ) -> list[Result]:
        return [
            Result(
                item_id=self.catalog.tokens[p],
                title=self.catalog.titles[p],
                score=float(s),
                explanation=explain(int(p), float(s)) if explain is not None else None,
            )
            for p, s in zip(positions, scores, strict=True)
        ]

    # ------------------------------------------------------------------ queries
    def recommend(
        self,
        user: str,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        where: Filters = (),
        exclude: Ids = (),
        explain: bool = True,
    ) -> list[Result]:
        """The ``k`` best items for a known user (raw user id), best first."""
        return self.recommend_batch([user], k, exclude_seen=exclude_seen, where=where, exclude=exclude, explain=explain)[0]

    def recommend_batch(
        self,
        users: Ids,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        where: Filters = (),
        exclude: Ids = (),
        explain: bool = True,
        batch_size: int = 1024,
    ) -> list[list[Result]]:
        """:meth:`recommend` for many users: one index search per ``batch_size`` users."""
        return list(self.iter_recommend(users, k, exclude_seen=exclude_seen, where=where, exclude=exclude,
                                        explain=explain, batch_size=batch_size))  # fmt: skip

    def iter_recommend(
        self,
        users: Ids,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        where: Filters = (),
        exclude: Ids = (),
        explain: bool = True,
        batch_size: int = 1024,
    ) -> Iterator[list[Result]]:
        """Like :meth:`recommend_batch`, yielding each user's results in order (for progress bars).
        Every id, ``k`` and filter is checked on the call, before the first result is asked for."""
        k = self._check_k(k)
        index = [self.user_index(u) for u in _ids(users)]
        allowed = self._allowed(where, exclude)
        return self._recommend_rows(index, k, allowed, exclude_seen, explain, batch_size)

    def _recommend_rows(
        self, index: list[int], k: int, allowed: np.ndarray, exclude_seen: bool, explain: bool, batch_size: int
    ) -> Iterator[list[Result]]:
        for start in range(0, len(index), batch_size):
            rows = index[start : start + batch_size]
            seen = [self.seen_items(u) if exclude_seen else np.zeros(0, np.int64) for u in rows]
            found = self.search_vectors(self.user_vectors[rows], k, allowed, seen)
            for u, (positions, scores) in zip(rows, found, strict=True):
                history = self.history(u) if explain else []
                why = (lambda p, s, h=history: self.explainer.for_user(h, p)) if explain else None
                yield self._results(positions, scores, why)

    def predict(self, user: str, items: Ids) -> list[Prediction]:
        """The rating, like and retrieval towers' answers for a known user (raw id) and each of
        ``items`` (raw ids of items the model trained on), in the order given. Builds the model
        and encodes every item once per :class:`Recommender` (about a second on ml-100k)."""
        u = self.user_index(user)
        positions = [self.catalog.position(item) for item in _ids(items)]  # every id checked before any work
        added = [self.catalog.tokens[p] for p in positions if p >= self.catalog.n_base]
        if added:
            raise RetrievalError(
                f"item '{added[0]}' was added after training: the rating and like towers score the items the "
                "model trained on (an added item gets a retrieval vector only)"
            )
        if not positions:
            return []
        with torch.no_grad():
            rating, like = tower_predictions(self.run.model, self._model_encoded(), u, positions)
        score = (self.catalog.vectors[positions] @ self.user_vectors[u]).tolist()
        return [
            Prediction(
                item_id=self.catalog.tokens[p],
                title=self.catalog.titles[p],
                rating=float(rating[j]) if rating is not None else None,
                like=float(like[j]) if like is not None else None,
                score=float(score[j]),
            )
            for j, p in enumerate(positions)
        ]

    def _model_encoded(self) -> Any:
        """The model's ``encode()`` (every item and graph node through the encoders), once."""
        if self._encoded is None:
            with torch.no_grad():
                self._encoded = self.run.model.encode()
        return self._encoded

    def warm_up(self) -> WarmUp:
        """Answer one explained query of each kind this run supports, so that what a query loads
        on first use (the model and its encoding, the text encoder, the explainer, the new-user
        prior) is loaded now rather than at a user's first query: ``kgrec serve`` calls it
        before it takes requests. On ml-100k the first ``search`` otherwise takes about 5 s (the
        text model loads), the first ``predict`` or new-user query about half a second
        (``scripts/bench_serve.py --first-queries``).

        Returns:
            :class:`WarmUp`: seconds per query kind, in the order run (``recommend``,
            ``similar``, ``predict``, ``search`` with text, ``new user``; a kind the catalog cannot answer, with fewer than two active trained items,
            is left out), and why a kind failed (a :class:`~kgrec.errors.KgrecError`, e.g. a
            text model that cannot be loaded offline): users' queries of that kind would fail
            the same way, the others still work.
        """
        base = [int(p) for p in self.catalog.active_ids() if p < self.catalog.n_base]
        users = np.flatnonzero(self._trained_mask())
        item = self.catalog.tokens[base[0]] if base else None
        user = str(self.run.dataset.users[users[0]]) if len(users) else None
        has_text = self.run.text is not None and self.run.config.model.use_text
        queries: list[tuple[str, Callable[[], object]]] = []
        if user is not None:
            queries.append(("recommend", lambda: self.recommend(user, 1, exclude_seen=False)))
        if item is not None and self.catalog.n_active >= 2:
            queries.append(("similar", lambda: self.similar(item, 1)))
        if user is not None and item is not None:
            queries.append(("predict", lambda: self.predict(user, [item])))
        if has_text:
            queries.append(("search", lambda: self.search("warm-up", 1)))
        if item is not None:
            queries.append(("new user", lambda: self.recommend_for_new_user(liked=[item], k=1)))
        done = WarmUp()
        for kind, query in queries:
            start = time.perf_counter()
            try:
                query()
            except KgrecError as error:
                done.errors[kind] = str(error)
            else:
                done.seconds[kind] = time.perf_counter() - start
        return done

    def recommend_for_new_user(
        self,
        liked: Ids = (),
        likes_text: str | None = None,
        k: int = 10,
        *,
        where: Filters = (),
        exclude: Ids = (),
        explain: bool = True,
    ) -> list[Result]:
        """The ``k`` best items for a user the model has not seen, from items they like and/or a
        text of their interests (see the module docstring for how the query vector is made).
        The liked items are left out of the results."""
        k = self._check_k(k)
        query, positions = self._new_user(liked, likes_text)
        allowed = self._allowed(where, exclude)
        [(found, scores)] = self.search_vectors(query[None], k, allowed, [np.asarray(positions, np.int64)])
        why = None
        if explain:
            history = [HistoryItem(p, None, liked=True) for p in positions]
            if history:
                why = lambda p, s: self.explainer.for_user(history, p)  # noqa: E731
            else:
                why = lambda p, s: self.explainer.for_text(likes_text or "", p, s, "recommendation score")  # noqa: E731
        return self._results(found, scores, why)

    def similar(
        self,
        item: str,
        k: int = 10,
        *,
        where: Filters = (),
        exclude: Ids = (),
        explain: bool = True,
    ) -> list[Result]:
        """The ``k`` items most similar to ``item`` (raw id): cosine of retrieval vectors centred on
        the trained items' mean (:attr:`item_centre`). For an item added after training that has
        text, blended with the text encoder's cosine (:meth:`_similar_to_added_item`)."""
        return next(self.iter_similar([item], k, where=where, exclude=exclude, explain=explain))

    def iter_similar(
        self,
        items: Ids,
        k: int = 10,
        *,
        where: Filters = (),
        exclude: Ids = (),
        explain: bool = True,
        batch_size: int = 1024,
    ) -> Iterator[list[Result]]:
        """:meth:`similar` for many items (raw ids), yielding each item's results in order: one
        index search per ``batch_size`` items (an added item with text is scored on its own).
        Every id, ``k`` and filter is checked on the call, before the first result is asked for."""
        k = self._check_k(k)
        sources = [self.catalog.position(item) for item in _ids(items)]
        if k > self.catalog.n_active - 1:
            raise RetrievalError(f"k={k} is larger than the other items of the catalog ({self.catalog.n_active - 1})")
        allowed = self._allowed(where, exclude)
        return self._similar_rows(sources, k, allowed, explain, batch_size)

    def _similar_rows(
        self, sources: list[int], k: int, allowed: np.ndarray, explain: bool, batch_size: int
    ) -> Iterator[list[Result]]:
        for start in range(0, len(sources), batch_size):
            rows = sources[start : start + batch_size]
            plain = sorted({s for s in rows if not self._blends_text(s)})
            found = self.search_vectors(
                self.catalog.vectors[plain], k, allowed, [np.asarray([s]) for s in plain], cosine=True, centre=self.item_centre
            ) if plain else []  # fmt: skip
            by_source = dict(zip(plain, found, strict=True))
            for source in rows:
                blended = source not in by_source
                positions, scores = self._similar_to_added_item(source, k, allowed) if blended else by_source[source]
                why = (
                    (lambda p, s, q=source, b=blended: self.explainer.for_similar(q, p, blended_score=s if b else None))
                    if explain else None
                )  # fmt: skip
                yield self._results(positions, scores, why)

    def _blends_text(self, source: int) -> bool:
        """Whether ``similar`` of catalog position ``source`` blends in the text: an item added
        after training, in a run with text, that has text itself."""
        if self.catalog.added_item(source) is None or self.run.text is None:
            return False
        return bool(self._text_space()[2][source])

    def _similar_to_added_item(self, source: int, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        r"""The ``k`` items most like an item added after training (catalog position ``source``,
        left out), among ``allowed`` ``(n,)`` active items: positions and scores, exact.

        .. math::
            s_i = w \cos(\mathbf{x}_q - \bar{\mathbf{x}}, \mathbf{x}_i - \bar{\mathbf{x}})
            + (1 - w) \cos(\mathbf{t}_q, \mathbf{t}_i)

        with :math:`w` = :data:`NEW_ITEM_SIMILAR_MODEL_WEIGHT`, :math:`\mathbf{x}` the retrieval
        vectors and :math:`\mathbf{t}` the text encoder's (items without text: the first cosine
        alone). An added item's retrieval vector comes from its text and graph without any
        interaction, and alone it lists items that share little with it: on ml-100k's held-out
        items, 63% of such a list shared a genre with the item, 89% for the blend, which also
        listed twice as many of the items its held-out likes point to
        (``scripts/bench_coldstart.py``). One pass over the catalog per query.
        """
        _, text, has_text = self._text_space()
        allowed = self.catalog.active.copy() if allowed is None else allowed & self.catalog.active
        allowed[source] = False
        candidates = np.flatnonzero(allowed)
        centred = self.catalog.vectors[candidates] - self.item_centre
        query = self.catalog.vectors[source] - self.item_centre
        model = centred @ query / np.maximum(np.linalg.norm(centred, axis=1) * np.linalg.norm(query), 1e-12)
        w = NEW_ITEM_SIMILAR_MODEL_WEIGHT
        scores = np.where(has_text[candidates], w * model + (1 - w) * (text[candidates] @ text[source]), model)
        top = _top_k(scores, k)
        return candidates[top], scores[top].astype(np.float32)

    def search(
        self,
        text: str,
        k: int = 10,
        *,
        where: Filters = (),
        exclude: Ids = (),
        explain: bool = True,
    ) -> list[Result]:
        """The ``k`` items whose text is closest to a free text: cosine of the run's text-encoder
        vectors (items without text are left out)."""
        k = self._check_k(k)
        query = self.text_vector(text)[0].numpy().astype(np.float32)
        index, vectors, has_text = self._text_space()
        allowed = self._allowed(where, exclude) & has_text
        [(found, scores)] = self._search(index, vectors, query[None], k, allowed, None, cosine=True)
        why = (lambda p, s: self.explainer.for_text(text, p, s)) if explain else None
        return self._results(found, scores, why)

    # ------------------------------------------------------------------ query vectors
    def text_vector(self, text: str) -> torch.Tensor:
        """The run's text encoder applied to ``text``: ``(1, t)``."""
        if not isinstance(text, str):  # a list or a number said "the query text is empty"
            raise RetrievalError(f"the query text: expected a string of words, e.g. \"animated film for children\", "
                                 f"got {type(text).__name__} {text!r:.60}")  # fmt: skip
        if not text.strip():
            raise RetrievalError("the query text is empty: give some words, e.g. \"animated film for children\"")
        if not re.search(r"[^\W_]", text):  # "???", "...": the encoder would rank items for it all the same
            raise RetrievalError(
                f"the query text {text.strip()!r} has no words (no letter or digit, in any script): give some "
                "words, e.g. \"animated film for children\""
            )
        model = self.run.model
        if model.text_adaptor is None or self.run.text is None:
            raise RetrievalError(
                "this run was trained without text (model.use_text=false), so it has nothing to compare a text "
                "query with; retrain with model.use_text=true on items with text columns (NAME.item)"
            )
        if self._encoder is None:
            from kgrec.text import TextEncoder

            self._encoder = TextEncoder.from_config(self.run.config.text)
        vector = self._encoder.encode([text.strip()], progress=False)  # (1, t)
        if vector.shape[1] != model.sizes.text_dim:
            raise RetrievalError(
                f"the text encoder gives {vector.shape[1]}-d vectors, the model reads {model.sizes.text_dim}-d: "
                f"the run's text model ({self.run.config.text.model}) changed"
            )
        return vector

    def item_vector_for_text(self, text: str) -> np.ndarray:
        """``cold_item_vectors(text)``: where an item with this text alone would sit, ``(d,)``."""
        with torch.no_grad():
            return self.run.model.cold_item_vectors(self.text_vector(text), None)[0].numpy().astype(np.float32)

    def _text_space(self) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
        """Unit text-encoder vectors of the catalog ``(n, t)`` (zeros for items without text),
        an exact index over the active ones, and which positions have text. Callers encode their
        query with :meth:`text_vector` first, which refuses a run without text."""
        if self._text_index is None or len(self._text_index[1]) != len(self.catalog):
            vectors = np.concatenate([self.run.text.numpy(), self.catalog.added_encoded]).astype(np.float32)
            has_text = np.isfinite(vectors).all(1)
            vectors[~has_text] = 0.0
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            ids = np.flatnonzero(has_text & self.catalog.active)
            index = VectorIndex.build(vectors[ids], ids, IndexConfig(kind="flat"))
            self._text_index = (index, vectors, has_text)
        return self._text_index

    def new_user_vector(self, liked: Ids = (), likes_text: str | None = None) -> np.ndarray:
        """The query vector ``(d,)`` of a user the model has not seen, from raw ids of items they
        like and/or a text of their interests (see the module docstring); scored by inner product."""
        return self._new_user(liked, likes_text)[0]

    def _new_user(self, liked: Ids, likes_text: str | None) -> tuple[np.ndarray, list[int]]:
        """A new user's query vector and the catalog positions of the items they like (each once)."""
        liked = _ids(liked)
        if not liked and likes_text is None:
            raise RetrievalError("a new user needs liked items (--liked ITEM) or a text (--likes-text TEXT)")
        positions = list(dict.fromkeys(self.catalog.position(t) for t in liked))  # an item liked twice counts once
        text = self.text_vector(likes_text) if likes_text is not None else None
        return self._new_user_vector(positions, text), positions

    def _new_user_vector(self, positions: list[int], text: torch.Tensor | None) -> np.ndarray:
        model = self.run.model
        trained = [p for p in positions if p < self.catalog.n_base]
        # A text, and each item added after training, counts as one more liked item, shared by
        # the trained items search() or similar() ranks first for it: an added item's own vector
        # was shaped by no interaction, and the model's history pathway reads trained items only.
        shared = [self._added_stand_ins(p) for p in positions if p >= self.catalog.n_base]
        if text is not None:
            shared.append(self._text_stand_ins(text))
        if "history" in model.config.user_parts:
            with torch.no_grad():
                prior = self.new_user_prior().prior
                items = self._model_encoded().items
                parts = [items[trained]] + [items[s].mean(0, keepdim=True) for s in shared]
                return model.new_user_vector(torch.cat(parts), prior)[0].numpy().astype(np.float32)
        liked, weights = list(trained), [1.0] * len(trained)
        for stand_ins in shared:
            liked += stand_ins.tolist()
            weights += [1.0 / len(stand_ins)] * len(stand_ins)
        return self.fold_in(np.asarray(liked, np.int64), np.asarray(weights, np.float32))

    def _added_stand_ins(self, position: int) -> np.ndarray:
        """Catalog positions of the :data:`TEXT_FEEDBACK_ITEMS` active trained items most like
        the item added after training at ``position`` (what :meth:`similar` ranks first for it)."""
        allowed = self.catalog.active.copy()
        allowed[self.catalog.n_base :] = False
        if self._blends_text(position):
            found, _ = self._similar_to_added_item(position, TEXT_FEEDBACK_ITEMS, allowed)
        else:
            [(found, _)] = self.search_vectors(self.catalog.vectors[position][None], TEXT_FEEDBACK_ITEMS, allowed,
                                               [np.asarray([position])], cosine=True, centre=self.item_centre)  # fmt: skip
        if not len(found):
            raise RetrievalError("no trained item is left in the catalog to stand for the added items liked")
        return np.asarray(found, np.int64)

    def _text_stand_ins(self, text: torch.Tensor) -> np.ndarray:
        """Catalog positions of the :data:`TEXT_FEEDBACK_ITEMS` trained items whose own text
        matches ``text`` best (what :meth:`search` ranks first): a text's stand-ins as liked items.

        Not the model's text pathway applied to the query: that pathway keeps what mattered for
        recommendation rather than the words, so every query text landed near the same users
        (on ml-100k "space adventure", "romantic comedy" and "scary horror movie" got the same
        top 5), and near the items added through that pathway alone, which then ranked first."""
        index, text_vectors, has_text = self._text_space()
        allowed = has_text.copy()
        allowed[self.catalog.n_base :] = False
        [(matches, _)] = self._search(index, text_vectors, text.numpy(), TEXT_FEEDBACK_ITEMS, allowed, None, cosine=True)
        if not len(matches):
            raise RetrievalError("no item with text to match the text against: give liked items instead")
        return matches.astype(np.int64)

    def new_user_prior(self) -> PriorChoice:
        """How much new users' histories are shrunk toward the mean training user: the weight
        chosen on the run's valid split (:func:`~kgrec.retrieval.new_users.choose_history_prior`),
        computed at the first new-user query of a run whose user encoder has a ``history`` part."""
        if self._prior is None:
            if "history" not in self.run.model.config.user_parts:
                raise RetrievalError("this run's user encoder has no history part: new users are folded in")
            with torch.no_grad():
                self._prior = choose_history_prior(self.run.model, self.run.dataset, self._model_encoded())
        return self._prior

    def fold_in(self, liked: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        r"""A user vector for liked catalog positions, fitted to the frozen item vectors:

        .. math::
            \mathbf{u} = \arg\min_{\mathbf{u}} -\sum_{i \in L} w_i \log
                \frac{\exp \langle \mathbf{u}, \mathbf{x}_i \rangle}{\sum_{j} \exp \langle \mathbf{u}, \mathbf{x}_j \rangle}
                + \lambda \lVert \mathbf{u} \rVert^2

        (:math:`w` normalised to sum 1; :math:`j` over the active catalog, or a fixed sample of
        :data:`FOLD_IN_NEGATIVES` items beyond that), from the mean trained user vector, with
        :data:`FOLD_IN_STEPS` Adam steps: the classic fold-in of a new user into a factor
        model (``scripts/bench_newusers.py`` measures it beside the history pathway and EASE).
        """
        weights = np.ones(len(liked), np.float32) if weights is None else weights
        candidates = self.catalog.active_ids()
        if len(candidates) > FOLD_IN_NEGATIVES:
            sample = np.random.default_rng(0).choice(candidates, FOLD_IN_NEGATIVES, replace=False)
            candidates = np.unique(np.concatenate([sample, liked]))
        items = torch.from_numpy(self.catalog.vectors[candidates])  # (m, d)
        where = torch.from_numpy(np.searchsorted(candidates, liked))
        w = torch.from_numpy(weights / weights.sum())
        u = torch.tensor(self.user_vectors.mean(0), requires_grad=True)
        optimizer = torch.optim.Adam([u], lr=0.05)
        for _ in range(FOLD_IN_STEPS):
            loss = -(w * torch.log_softmax(items @ u, 0)[where]).sum() + FOLD_IN_L2 * (u @ u)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return u.detach().numpy().astype(np.float32)

    # ------------------------------------------------------------------ catalog changes
    def refresh(self) -> bool:
        """Take up the catalog changes that another process saved since this object read or
        wrote the run's catalog (``kgrec add-items`` / ``remove-items`` beside a server): reload
        the catalog and its index. After a failed index update it also takes up an index
        ``kgrec index build`` saved since (:meth:`_take_up_rebuilt_index`). Returns whether it
        took up anything. :meth:`add_items` and
        :meth:`remove_items` call it first, so a change is made on top of the latest catalog
        and never undoes another's (under a lock: :meth:`_changing_catalog`); a server calls it
        before each request (a file ``stat``)."""
        stamp = _catalog_stamp(self.path)
        if stamp == self._catalog_stamp:
            return self._index_error is not None and self._take_up_rebuilt_index()
        base = self.catalog
        self._adopt(Catalog.load(self.path, self.run.dataset, base.vectors[: base.n_base], self.vectors_sha256,
                                 base.titles[: base.n_base], base.text_dim))  # fmt: skip
        config = self.index.config if self.index is not None else None
        try:
            self.index = self._open_index(config, build_missing=True)
        except RetrievalError:  # the other process is between its catalog and its index saves
            self.index = self.build_index(config, save=False)
        self._index_error = None
        return True

    def _take_up_rebuilt_index(self) -> bool:
        """After a failed index update, the index ``kgrec index build`` saved since, when it
        matches the catalog (queries answered 503 until a restart, though the repair was done).
        Each saved version is read once: a stale one is remembered by its manifest's stamp."""
        stamp = _file_stamp(self.index_dir / "manifest.json")
        if stamp is None or stamp == self._index_tried:
            return False
        self._index_tried = stamp
        try:
            self.index = self._open_index(None, build_missing=False)
        except RetrievalError:  # the index saved before the failed change: still stale
            return False
        self._index_error = None
        return True

    def add_items(
        self,
        items: str | Path,
        link: str | Path | None = None,
        kg: str | Path | None = None,
        progress: bool = False,
        pathways: Sequence[str] = PATHWAYS,
    ) -> list[str]:
        """Embed the items of a new ``.item`` file (with optional ``.link`` / ``.kg``) through the
        model's inductive pathways, add them to the index and record them in the run.

        ``pathways`` names the pathways that embed them: ``text``, ``graph`` or both (the default;
        a pathway the model lacks is skipped). Returns the added item ids, a list whose
        ``notes`` say what the user may not expect (:func:`~kgrec.retrieval.coldstart.empty_row_notes`,
        :func:`~kgrec.retrieval.coldstart.graph_notes`, :func:`~kgrec.retrieval.coldstart.pathway_notes`). See :mod:`kgrec.retrieval.coldstart`.
        """
        pathways = (pathways,) if isinstance(pathways, str) else tuple(pathways)
        unknown = sorted(set(pathways) - set(PATHWAYS))
        if unknown or not pathways:
            raise RetrievalError(f"pathways: expected one or more of {list(PATHWAYS)}, got {list(pathways)}")
        new = read_new_items(items, link, kg)
        with self._changing_catalog():
            embedded = embed_new_items(self.run, new, self.catalog, use=pathways, progress=progress)
            start = len(self.catalog)
            catalog = self.catalog.with_added(embedded.items, embedded.vectors, embedded.encoded)
            self._commit(catalog, added=np.arange(start, len(catalog), dtype=np.int64))
        notes = empty_row_notes(new) + (graph_notes(self.run.graph, new) if self.run.graph is not None else [])
        if self.run.graph is not None and self.run.model.config.use_graph:
            notes += pathway_notes(embedded.items, pathways)
        return AddedIds((item.item_id for item in embedded.items), notes)

    def remove_items(self, items: Ids) -> list[str]:
        """Take items (raw ids, or titles; one as a plain string) out of the index and record it
        in the run; returns their ids."""
        asked = _ids(items)
        if not asked:
            raise RetrievalError("no items to remove: give one or more item ids")
        with self._changing_catalog():
            positions = np.asarray(list(dict.fromkeys(self.catalog.position(t) for t in asked)), dtype=np.int64)
            tokens = [self.catalog.tokens[p] for p in positions]
            if len(positions) >= self.catalog.n_active:
                raise RetrievalError("cannot remove every item of the catalog")
            catalog = self.catalog.with_removed(tokens)
            self._commit(catalog, removed=positions)
        return tokens

    def _commit(self, catalog: Catalog, added: np.ndarray | None = None, removed: np.ndarray | None = None) -> None:
        """Save the catalog, then update (or rebuild) and save the index; both writes are atomic.

        Should the index update fail, this object stops answering queries (its index no longer
        matches its catalog), the next open reports the mismatch, and ``kgrec index build``
        repairs it."""
        index = self._require_index()
        catalog.save(self.path)
        self._adopt(catalog)
        try:
            updated = True
            if added is not None and len(added):
                index.add(catalog.vectors[added], added)
            if removed is not None and len(removed):
                updated = index.remove(removed)
            if updated:
                self._save_index(index)
            else:
                self.build_index(IndexConfig.from_dict(index.config.to_dict()))
        except Exception as error:
            self.index = None
            self._index_error = (
                f"{self.path}: the catalog was changed but updating its index failed ({error}); "
                f"rebuild it with `kgrec index build {self.path}`"
            )
            raise IndexOutOfDateError(self._index_error) from error

    def _adopt(self, catalog: Catalog) -> None:
        """Answer from ``catalog``, the one saved in the run now (the caches built from the
        previous one go)."""
        self.catalog = catalog
        self._catalog_stamp = _catalog_stamp(self.path)
        self._explainer = None
        self._text_index = None

    @contextlib.contextmanager
    def _changing_catalog(self) -> Iterator[None]:
        """A catalog change from start to save, one process at a time: on the latest catalog
        (:meth:`refresh`), under an exclusive lock on the run's ``vectors.safetensors`` (the
        file every run with a catalog has; no lock file is left), so that two processes' changes
        never interleave and the one saved last never undoes the other."""
        with exclusive_lock(self.path / "vectors.safetensors"):
            self.refresh()
            yield

    def catalog_dir(self) -> Path:
        """``RUN_DIR/catalog/``: the items added and removed since training."""
        return self.path / CATALOG_DIR
