r"""Queries on a trained run: recommend, similar items, text search, new users, catalog changes.

``rec = Recommender.open("runs/ml-100k")`` loads the run (:func:`kgrec.train.saved.load_run`),
its catalog (:mod:`kgrec.retrieval.catalog`) and its FAISS index (``RUN_DIR/index/``, built on
first use when missing, refused when it does not match the run:
:mod:`kgrec.retrieval.indexed_catalog`). Every query returns a list of :class:`Result`
(``item_id``, ``title``, ``score``, ``explanation``), best first.

Predict only: a run trained without the retrieval tower (``model.tasks=[rating]``, ``[rating,
like]``) has no vectors to search, and ``Recommender.open(run, predict_only=True)`` opens a run
without its index (none is opened, built or saved: ``kgrec predict``). Such a recommender answers
``predict`` (and id lookups), and ``search`` when the run has text (it compares text-encoder
vectors); every query that searches the retrieval vectors, ``recommend``, ``similar``, new users
and ``build_index``, raises :class:`PredictOnlyError` saying why
(:attr:`Recommender.predict_only`). ``add_items`` / ``remove_items`` change a run without the
retrieval tower (there is no index to keep in step: the added items are for ``predict``), and
are refused where an index exists but was not opened.

Predict: the rating and like towers score an item added after training from the fused vector
that :meth:`~kgrec.models.MultiTaskRecommender.fuse_cold_items` gave it from its text and graph
(kept in the catalog), with no item bias (:meth:`~kgrec.models.MultiTaskRecommender.predict_cold`);
items added before the catalog kept fused vectors are refused (remove them and add them again
under new ids: a removed id is not taken again).

Query vectors, in the retrieval tower's space (except ``search``'s), scored by the inner product
:math:`s(\mathbf{q}, \mathbf{x}_i) = \langle \mathbf{q}, \mathbf{x}_i \rangle` or its cosine:

* ``recommend(user)``: the trained user vector :math:`\mathbf{u}` (``vectors.safetensors``).
* ``search(text)``: the text is encoded by the run's text encoder, :math:`\mathbf{t} =
  \mathrm{enc}(text)`, and items are ranked by the cosine with the encoder's vectors of their
  own text, :math:`\langle \hat{\mathbf{t}}, \hat{\mathbf{t}}_i \rangle` (``text.safetensors``;
  an exact flat index over them, built on first use: :mod:`kgrec.retrieval.text_query`). This is
  a text match, not a
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
  encoder's (:func:`kgrec.retrieval.added_similar.similar_to_added_item`).
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
  feedback). Ranked by the inner product, like a trained user (:mod:`kgrec.retrieval.new_user_query`).

Cosine queries run on the same index: the query is normalised (after centring, for
``similar``), and the index's inner-product candidates (over-fetched) are re-scored by cosine;
catalogs of up to :data:`EXACT_SUBSET_MAX` items are scored exactly (:mod:`kgrec.retrieval.nearest`).

Exclusions and filters: ``recommend`` leaves out every item the user interacted with (train,
valid and test parts of the dataset) unless ``exclude_seen=False``; ``where`` (``class=Comedy``:
token equality, token_seq membership) and ``exclude`` apply to every query. The index is
searched for ``k`` + the number of excluded items, doubling while a row has fewer than ``k``
qualifying items; a restrictive filter (at most :data:`EXACT_SUBSET_MAX` items qualify) or an
exhausted index is answered by exact scoring of the qualifying items, so a query returns
exactly ``k`` results whenever ``k`` items qualify.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from kgrec.errors import KgrecError, PredictOnlyError, RetrievalError
from kgrec.retrieval.added_similar import NEW_ITEM_SIMILAR_MODEL_WEIGHT as NEW_ITEM_SIMILAR_MODEL_WEIGHT
from kgrec.retrieval.added_similar import similar_to_added_item
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
from kgrec.retrieval.index import IndexConfig, VectorIndex
from kgrec.retrieval.indexed_catalog import INDEX_DIR as INDEX_DIR
from kgrec.retrieval.indexed_catalog import IndexedCatalog
from kgrec.retrieval.nearest import COSINE_OVERFETCH as COSINE_OVERFETCH
from kgrec.retrieval.nearest import nearest
from kgrec.retrieval.new_user_query import FOLD_IN_L2 as FOLD_IN_L2
from kgrec.retrieval.new_user_query import FOLD_IN_NEGATIVES as FOLD_IN_NEGATIVES
from kgrec.retrieval.new_user_query import FOLD_IN_STEPS as FOLD_IN_STEPS
from kgrec.retrieval.new_user_query import (
    TEXT_FEEDBACK_ITEMS,
    fold_in_vector,
    history_user_vector,
    liked_with_weights,
)
from kgrec.retrieval.new_users import PriorChoice, choose_history_prior
from kgrec.retrieval.predict import Prediction, tower_predictions
from kgrec.retrieval.run_users import RunUsers
from kgrec.retrieval.run_vectors import load_run_vectors, predict_only_queries
from kgrec.retrieval.text_query import TextQueries, TextSpace

if TYPE_CHECKING:
    from kgrec.train.saved import LoadedRun

# INDEX_DIR, COSINE_OVERFETCH, FOLD_IN_*, NEW_ITEM_SIMILAR_MODEL_WEIGHT are imported ``as`` themselves
# to be read from here as before; each is defined, and to be changed, in the module that uses it.
EXACT_SUBSET_MAX = 65_536  # up to this many qualifying items, queries are scored exactly (nearest())

Ids = str | int | Iterable[str | int]  # raw ids (an item's title serves too: Catalog.position): several, or one
Filters = Filter | str | Sequence[Filter | str] | Mapping[str, str | float]  # ``where``: several, one, or {column: value}


# how an added item the towers cannot score is mended: "(kgrec remove-items)" is what the service
# words as "(DELETE /items/ID)" (kgrec.serve.app._HTTP_WORDS), and a removed id is not added again
_READD = "remove it (kgrec remove-items) and add it"


def _ids(values: Ids | None) -> list[str]:
    """Raw ids as a list: a plain string (or integer) is one id, not the characters of one;
    ``None`` is none."""
    if values is None:  # none given (exclude=None), as the default () says
        return []
    if isinstance(values, (str, numbers.Integral)):
        return [str(values)]
    if not isinstance(values, Iterable):  # exclude=5.0: "TypeError: 'float' object is not iterable"
        raise RetrievalError(f"expected an id (a string or an integer) or a list of ids, got "
                             f"{type(values).__name__} {values!r:.60}")  # fmt: skip
    return [str(v) for v in values]


def _filters(where: Filters | None) -> list[Filter | str]:
    """``where`` as a list: one filter (``"class=Comedy"``) or several; a mapping is one
    ``column=value`` filter per key (``{"class": "Comedy", "release_year": 1995}``); ``None``
    is none."""
    if where is None:  # no filter (where=None), as the default () says
        return []
    if isinstance(where, Mapping):  # it gave its keys alone: "--where class: expected COLUMN=VALUE"
        # spaces around the column and the value aside, as Filter.parse reads "class = Comedy"
        return [Filter(str(column).strip(), _filter_value(column, value)) for column, value in where.items()]
    if isinstance(where, (str, Filter)):
        return [where]
    filters = list(where) if isinstance(where, Iterable) else [where]
    for f in filters:  # where=[("class", "Comedy")] failed with "'tuple' object has no attribute 'column'"
        if not isinstance(f, (str, Filter)):
            raise RetrievalError(f"where: expected 'COLUMN=VALUE' strings or a mapping {{column: value}}, got "
                                 f"{type(f).__name__} {f!r:.60}")  # fmt: skip
    return filters


def _filter_value(column: object, value: object) -> str:
    """A ``where`` mapping's value as the text of its filter: a string, or a number (spaces
    around it aside; an empty one is refused, as ``"class="`` is)."""
    if isinstance(value, str) or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        if text := str(value).strip():
            return text
        raise RetrievalError(f"where={{{column!r}: {value!r:.60}}}: the value is empty; give the value to keep "
                             f"(COLUMN=VALUE)")  # fmt: skip
    raise RetrievalError(f"where={{{column!r}: {value!r:.60}}}: expected one value per column, a string or a number "
                         f"(several filters AND: give a list of 'COLUMN=VALUE' strings)")  # fmt: skip


@dataclass(frozen=True, repr=False)
class Result:
    """One returned item.

    Attributes:
        item_id: the raw item token.
        title: its display name.
        score: the query's score (inner product for users, cosine for items and text; for
            ``similar`` of an item added after training, the cosine blended with the text
            encoder's).
        explanation: why it was returned (``None`` when ``explain=False``).
    """

    item_id: str
    title: str
    score: float
    explanation: Explanation | None = None

    def __repr__(self) -> str:
        """One line: the explanation by its text (its paths, hops and node ids took screens when a
        list of results was printed in a notebook or a REPL)."""
        e = self.explanation
        why = "None" if e is None else f"Explanation(kind={e.kind!r}, text={e.text!r}, ...)"
        return f"Result(item_id={self.item_id!r}, title={self.title!r}, score={self.score:.4f}, explanation={why})"

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
        kinds: dict[str, list[str]] = {}  # the kinds that failed for each reason (predict only: all but predict)
        for kind, why in self.errors.items():
            kinds.setdefault(why, []).append(kind)
        failed = "".join(f"; {', '.join(names)} failed: {why}" for why, names in kinds.items())
        return f"{sum(self.seconds.values()):.1f} s ({done}){failed}"


class Recommender:
    """Nearest-neighbour queries over one trained run (see the module docstring).

    Build with :meth:`open`. Attributes: ``run`` (the :class:`~kgrec.train.saved.LoadedRun`),
    ``catalog``, ``index`` (a :class:`~kgrec.retrieval.index.VectorIndex`), ``explainer``,
    ``predict_only``. ``predict_only`` (the reason, else ``None``) makes a recommender without
    an index, that answers :meth:`predict` (and :meth:`search`, for a run with text) only (see
    the module docstring). One query at a time: a query may set the index's search parameters
    while it runs, so threads sharing a recommender hold a lock around each call (as ``kgrec
    serve`` does); the ``iter_*`` methods search as their results are asked for, so around the
    whole iteration. FAISS's BLAS threshold, which a query sets too, is one for the process:
    threads querying two recommenders at once share it as well.
    """

    def __init__(
        self,
        run: LoadedRun,
        catalog: Catalog,
        user_vectors: np.ndarray,
        vectors_sha256: str,
        predict_only: str | None = None,
    ) -> None:
        self.run = run
        self.path = Path(run.path)
        self.user_vectors = np.ascontiguousarray(user_vectors, dtype=np.float32)  # (U, d)
        self.vectors_sha256 = vectors_sha256
        # similar()'s centre: the trained items' mean vector, which added or removed items leave as is
        self.item_centre = catalog.vectors[: catalog.n_base].mean(0).astype(np.float32)  # (d,)
        self._indexed = IndexedCatalog(run, catalog, vectors_sha256, predict_only)  # the catalog, its index, their changes
        self._text = TextQueries(run)
        self._explainer: Explainer | None = None
        self._liked_by: list[np.ndarray] | None = None  # per trained item, its training users who liked it
        self._encoded: Any = None  # the model's encode() (_model_encoded), for new users and predict
        self._prior: PriorChoice | None = None
        self._users = RunUsers(run.dataset)

    @property
    def catalog(self) -> Catalog:
        """The :class:`~kgrec.retrieval.catalog.Catalog` answered from: the trained items and the
        changes saved since."""
        return self._indexed.catalog

    @catalog.setter
    def catalog(self, catalog: Catalog) -> None:
        self._indexed.catalog = catalog

    @property
    def index(self) -> VectorIndex | None:
        """The :class:`~kgrec.retrieval.index.VectorIndex` over the active catalog (``None`` after
        a failed catalog change: :attr:`index_error`, and when :attr:`predict_only`)."""
        return self._indexed.index

    @index.setter
    def index(self, index: VectorIndex | None) -> None:
        self._indexed.index = index

    @property
    def predict_only(self) -> str | None:
        """Why this recommender answers :meth:`predict` only, with no index (a run trained without
        the retrieval tower, or opened with ``predict_only=True``); ``None`` when it answers every query."""
        return self._indexed.no_index

    def _searchable(self) -> None:
        """Refuse a query that searches the retrieval vectors (or changes them) when :attr:`predict_only`."""
        if self.predict_only is not None:
            raise PredictOnlyError(self.predict_only)

    def _changeable(self) -> None:
        """Refuse a catalog change when :attr:`predict_only` with retrieval vectors (their index,
        not opened, would fall out of step); a run without the retrieval tower has none."""
        if self.catalog.dim > 0:
            self._searchable()

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
        predict_only: bool = False,
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
            predict_only: open no index (none is read, built or saved): :meth:`predict` answers
                (and :meth:`search`, for a run with text), every query that searches the
                retrieval vectors raises :class:`PredictOnlyError` (what ``kgrec predict`` opens).
                A run trained without the retrieval tower opens so whatever this says
                (:attr:`predict_only` says why).

        Raises:
            RetrievalError: the saved index does not match the run's vectors (or ``rebuild`` of
                a run without the retrieval tower: :class:`PredictOnlyError`).
            KgrecError: not a run folder, or its dataset is gone or changed.
        """
        loaded = load_run_vectors(run_dir, data)
        answers, others = predict_only_queries(loaded.run.text is not None)
        why = loaded.no_retrieval  # a run trained without the retrieval tower: predict only, whatever was asked
        if why is None and predict_only:
            why = (f"this Recommender was opened with predict_only=True (no index), so it answers {answers}; open "
                   f"the run without it to {others}")  # fmt: skip
        rec = cls(loaded.run, loaded.catalog, loaded.user_vectors, loaded.vectors_sha256, why)
        config = IndexConfig(kind=index) if isinstance(index, str) else index
        if why is not None and not rebuild:  # rebuild: build_index says why it cannot
            return rec
        rec.index = rec.build_index(config) if rebuild else rec._indexed.open_index(config, build_missing)
        return rec

    @property
    def index_dir(self) -> Path:
        """``RUN_DIR/index/``: the saved FAISS index and its manifest."""
        return self._indexed.index_dir

    def build_index(self, config: IndexConfig | None = None, save: bool = True) -> VectorIndex:
        """(Re)build the index over the active catalog and save it to ``RUN_DIR/index`` (atomically);
        :class:`PredictOnlyError` when :attr:`predict_only`."""
        return self._indexed.build_index(config, save)

    @property
    def index_error(self) -> str | None:
        """Why queries are refused (a catalog change whose index update failed), else ``None``."""
        return self._indexed.error

    @property
    def explainer(self) -> Explainer:
        """The run's :class:`~kgrec.retrieval.explain.Explainer`, built on first use."""
        if self._explainer is None or self._explainer.catalog is not self.catalog:  # rebuilt on a catalog change
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

    @staticmethod
    def _check_batch_size(batch_size: int) -> int:
        """A batch method's ``batch_size``: a negative one answered no user or item at all (an empty
        list, silently), zero a ``range()`` error."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise RetrievalError(f"batch_size must be a positive integer, got {batch_size!r}")
        return int(batch_size)

    def trained_users(self) -> list[str]:
        """Raw ids of the users :meth:`recommend` serves: those with a training interaction, in
        dataset order (for batch scoring of every user: ``kgrec recommend RUN --all-users``)."""
        return [str(self.run.dataset.users[i]) for i in np.flatnonzero(self._users.trained())]

    def user_index(self, user: str) -> int:
        """Dataset index of a raw user id; :class:`NotFoundError` when the run does not know it,
        or knows it only from valid/test interactions (nothing of the user was trained)."""
        return self._users.index(user)

    def _allowed(self, where: Filters, exclude: Ids) -> np.ndarray:
        mask = self.catalog.where_mask(_filters(where))
        for token in _ids(exclude):
            mask[self.catalog.position(token, allow_removed=True)] = False
        return mask

    def seen_items(self, user: int) -> np.ndarray:
        """Catalog positions of every item ``user`` interacted with (all parts of the dataset)."""
        return self._users.seen(user)

    def history(self, user: int) -> list[HistoryItem]:
        """The user's training interactions (with ratings when the data has them)."""
        return self._users.history(user, self.catalog.active)

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
        index = self._indexed.require_index()  # PredictOnlyError when predict_only
        return nearest(index, self.catalog.vectors, self.catalog.active, queries, k, allowed, excluded, cosine, centre,
                       exact_max=EXACT_SUBSET_MAX)  # fmt: skip

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
        if not isinstance(user, (str, numbers.Integral)):  # a list's text was looked up as an id: "unknown user '['u0']'"
            self.user_index(user)  # says what it is
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
        self._searchable()
        k, batch_size = self._check_k(k), self._check_batch_size(batch_size)
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
        ``items`` (raw ids or titles; items added after training too), in the order given (a
        tower the run lacks answers ``None``; no index is used). Builds the model and encodes
        every item once per :class:`Recommender` (about a second on ml-100k)."""
        u = self.user_index(user)
        positions = [self.scored_item(item) for item in _ids(items)]  # every id checked before any work
        return self._predictions([u] * len(positions), positions)

    def predict_pairs(self, users: Ids, items: Ids) -> list[Prediction]:
        """:meth:`predict` for many (user, item) pairs at once, ``users[j]`` with ``items[j]``
        (raw ids, as many of each), in the order given: what scoring a file of candidate or test
        pairs needs (``kgrec predict --pairs``). Every id is checked before any work; the towers
        score the pairs in batches, not one user at a time."""
        users, items = _ids(users), _ids(items)
        if len(users) != len(items):
            raise RetrievalError(f"predict_pairs: {len(users)} users and {len(items)} items: expected one user per item")
        rows = [self.user_index(user) for user in users]
        return self._predictions(rows, [self.scored_item(item) for item in items])

    def scored_item(self, item: str) -> int:
        """Catalog position of an item the rating and like towers can score (raw id or title): a
        trained item, or one added with its fused vector kept. A removed item, or one added
        before the catalog kept fused vectors, is refused, and so is an added item without a text
        vector (its row lacked a column the text template reads) where the like tower reads its
        text affinity."""
        position = self.catalog.position(item)
        c, config = self.catalog, self.run.model.config
        row = position - c.n_base
        if row < 0 or not ("rating" in config.tasks or "like" in config.tasks):
            return position
        if c.fused_dim == 0 or np.isnan(c.added_fused[row, 0]):
            raise RetrievalError(
                f"item '{c.tokens[position]}' was added before the catalog kept the vectors the rating and like "
                f"towers score added items by: {_READD} again under a new id (a removed id is not taken again)"
            )
        if "like" in config.tasks and config.like_text_affinity and np.isnan(c.added_encoded[row, 0]):
            raise RetrievalError(
                f"item '{c.tokens[position]}' has no text vector (its row lacked a column the text template reads), "
                f"and the like tower reads the text affinity (model.like_text_affinity): {_READD} again with its "
                "text under a new id"
            )
        return position

    def _predictions(self, users: list[int], positions: list[int]) -> list[Prediction]:
        """The towers' answers for the pairs ``(users[j], positions[j])`` (checked indices)."""
        if not positions:
            return []
        with torch.no_grad():
            rating, like = tower_predictions(
                self.run.model, self._model_encoded(), users, positions, self.catalog.n_base,
                self.catalog.added_fused, self.catalog.added_encoded,
            )  # fmt: skip
        score = None
        if self.user_vectors.shape[1] > 0:  # zero-width: trained without the retrieval tower
            score = np.einsum("ij,ij->i", self.catalog.vectors[positions], self.user_vectors[users]).tolist()
        return [
            Prediction(
                item_id=self.catalog.tokens[p],
                title=self.catalog.titles[p],
                rating=float(rating[j]) if rating is not None else None,
                like=float(like[j]) if like is not None else None,
                score=float(score[j]) if score is not None else None,
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
        on first use (the model and its encoding, the text encoder, the explainer and the graph
        view of its path search, the new-user prior) is loaded now rather than at a user's first
        query: ``kgrec serve`` calls it before it takes requests. On ml-100k the first ``search`` otherwise takes about 5 s (the
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
        users = np.flatnonzero(self._users.trained())
        item = self.catalog.tokens[base[0]] if base else None
        user = str(self.run.dataset.users[users[0]]) if len(users) else None
        has_text = self.run.text is not None and self.run.config.model.use_text
        queries: list[tuple[str, Callable[[], object]]] = []
        if user is not None:
            queries.append(("recommend", lambda: self.recommend(user, 1, exclude_seen=False)))
        if item is not None and self.catalog.n_active >= 2:
            queries.append(("similar", lambda: (self.similar(item, 1), self.explainer.prepare_paths())))  # 3-hop paths too
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
        self._searchable()
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
        self._searchable()
        k, batch_size = self._check_k(k), self._check_batch_size(batch_size)
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
        return bool(self._text_space().has_text[source])

    def _similar_to_added_item(self, source: int, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~kgrec.retrieval.added_similar.similar_to_added_item` in this catalog: the ``k``
        items most like the added item at position ``source``, among ``allowed`` active items."""
        return similar_to_added_item(self.catalog, self.item_centre, self._text_space(), source, k, allowed)

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
        vectors (items without text are left out). It needs no retrieval vectors, so a
        :attr:`predict_only` recommender of a run with text answers it too."""
        if self.run.text is None:  # no text and predict only: say the latter, as every other query does
            self._searchable()
        k = self._check_k(k)
        query = self.text_vector(text)[0].numpy().astype(np.float32)
        space = self._text_space()
        allowed = self._allowed(where, exclude) & space.has_text
        [(found, scores)] = nearest(space.index, space.vectors, self.catalog.active, query[None], k, allowed, None,
                                    cosine=True, exact_max=EXACT_SUBSET_MAX)  # fmt: skip
        why = (lambda p, s: self.explainer.for_text(text, p, s)) if explain else None
        return self._results(found, scores, why)

    # ------------------------------------------------------------------ query vectors
    def text_vector(self, text: str) -> torch.Tensor:
        """The run's text encoder applied to ``text``: ``(1, t)``."""
        return self._text.vector(text)

    def item_vector_for_text(self, text: str) -> np.ndarray:
        """``cold_item_vectors(text)``: where an item with this text alone would sit, ``(d,)``."""
        with torch.no_grad():
            return self.run.model.cold_item_vectors(self.text_vector(text), None)[0].numpy().astype(np.float32)

    def _text_space(self) -> TextSpace:
        """The catalog in the text encoder's space (:class:`~kgrec.retrieval.text_query.TextSpace`).
        Callers encode their query with :meth:`text_vector` first, which refuses a run without text."""
        return self._text.space(self.catalog)

    def new_user_vector(self, liked: Ids = (), likes_text: str | None = None) -> np.ndarray:
        """The query vector ``(d,)`` of a user the model has not seen, from raw ids of items they
        like and/or a text of their interests (see the module docstring); scored by inner product."""
        self._searchable()
        return self._new_user(liked, likes_text)[0]

    def _new_user(self, liked: Ids, likes_text: str | None) -> tuple[np.ndarray, list[int]]:
        """A new user's query vector and the catalog positions of the items they like (each once)."""
        liked = _ids(liked)
        if not liked and likes_text is None:
            raise RetrievalError("a new user needs liked items (--liked ITEM; liked= in Python) or a text (--likes-text "
                                 "TEXT; likes_text=)")
        positions = list(dict.fromkeys(self.catalog.position(t) for t in liked))  # an item liked twice counts once
        text = self.text_vector(likes_text) if likes_text is not None else None
        return self._new_user_vector(positions, text), positions

    def _new_user_vector(self, positions: list[int], text: torch.Tensor | None) -> np.ndarray:
        """The history pathway or the fold-in (:mod:`kgrec.retrieval.new_user_query`) over the
        trained items of ``positions``, and the stand-ins of the added ones and of ``text``."""
        trained = [p for p in positions if p < self.catalog.n_base]
        shared = [self._added_stand_ins(p) for p in positions if p >= self.catalog.n_base]
        if text is not None:
            shared.append(self._text_stand_ins(text))
        if "history" in self.run.model.config.user_parts:
            with torch.no_grad():
                prior = self.new_user_prior().prior
                return history_user_vector(self.run.model, self._model_encoded().items, prior, trained, shared)
        return self.fold_in(*liked_with_weights(trained, shared))

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
        space = self._text_space()
        allowed = space.has_text.copy()
        allowed[self.catalog.n_base :] = False
        [(matches, _)] = nearest(space.index, space.vectors, self.catalog.active, text.numpy(), TEXT_FEEDBACK_ITEMS,
                                 allowed, None, cosine=True, exact_max=EXACT_SUBSET_MAX)  # fmt: skip
        if not len(matches):
            raise RetrievalError("no item with text to match the text against: give liked items instead")
        return matches.astype(np.int64)

    def new_user_prior(self) -> PriorChoice:
        """How much new users' histories are shrunk toward the mean training user: the weight
        chosen on the run's valid split (:func:`~kgrec.retrieval.new_users.choose_history_prior`),
        computed at the first new-user query of a run whose user encoder has a ``history`` part."""
        self._searchable()
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
        self._searchable()
        return fold_in_vector(self.catalog.vectors, self.catalog.active_ids(), self.user_vectors.mean(0), liked, weights)

    # ------------------------------------------------------------------ catalog changes
    def refresh(self) -> bool:
        """Take up the catalog changes that another process saved since this object read or
        wrote the run's catalog (``kgrec add-items`` / ``remove-items`` beside a server): reload
        the catalog and its index. After a failed index update it also takes up an index
        ``kgrec index build`` saved since
        (:meth:`~kgrec.retrieval.indexed_catalog.IndexedCatalog.take_up_rebuilt_index`). Returns
        whether it took up anything. :meth:`add_items` and
        :meth:`remove_items` call it first, so a change is made on top of the latest catalog
        and never undoes another's (under a lock:
        :meth:`~kgrec.retrieval.indexed_catalog.IndexedCatalog.changing`); a server calls it
        before each request (a file ``stat``)."""
        return self._indexed.refresh()

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
        The rating and like towers score the added items too (:meth:`predict`); a run without the
        retrieval tower adds them for that alone.
        """
        self._changeable()
        pathways = (pathways,) if isinstance(pathways, str) else tuple(pathways)
        unknown = sorted(set(pathways) - set(PATHWAYS))
        if unknown or not pathways:
            raise RetrievalError(f"pathways: expected one or more of {list(PATHWAYS)}, got {list(pathways)}")
        new = read_new_items(items, link, kg)
        with self._indexed.changing():
            earlier = self.catalog.graph_extension
            embedded = embed_new_items(self.run, new, self.catalog, use=pathways, progress=progress)
            start = len(self.catalog)
            catalog = self.catalog.with_added(
                embedded.items, embedded.vectors, embedded.encoded, embedded.graph_extension, embedded.fused
            )
            self._indexed.commit(catalog, added=np.arange(start, len(catalog), dtype=np.int64))
        notes = empty_row_notes(new)
        if self.run.graph is not None:
            notes += graph_notes(self.run.graph, self.run.dataset, new, earlier)
        if self.run.graph is not None and self.run.model.config.use_graph:
            notes += pathway_notes(embedded.items, pathways)
        return AddedIds((item.item_id for item in embedded.items), notes)

    def remove_items(self, items: Ids) -> list[str]:
        """Take items (raw ids, or titles; one as a plain string) out of the index and record it
        in the run; returns their ids."""
        self._changeable()
        asked = _ids(items)
        if not asked:
            raise RetrievalError("no items to remove: give one or more item ids")
        with self._indexed.changing():
            positions = np.asarray(list(dict.fromkeys(self.catalog.position(t) for t in asked)), dtype=np.int64)
            tokens = [self.catalog.tokens[p] for p in positions]
            if len(positions) >= self.catalog.n_active:
                raise RetrievalError("cannot remove every item of the catalog")
            catalog = self.catalog.with_removed(tokens)
            self._indexed.commit(catalog, removed=positions)
        return tokens

    def catalog_dir(self) -> Path:
        """``RUN_DIR/catalog/``: the items added and removed since training."""
        return self.path / CATALOG_DIR
