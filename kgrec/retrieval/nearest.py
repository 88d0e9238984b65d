r"""The ``k`` best catalog positions for query vectors: through a FAISS index, or exactly.

Scores are inner products :math:`\langle \mathbf{q}, \mathbf{x}_i \rangle`, or with ``cosine``
the cosines :math:`\cos(\mathbf{q} - \mathbf{c}, \mathbf{x}_i - \mathbf{c})` around a centre
:math:`\mathbf{c}` (none: the plain cosine). A cosine query runs on the same inner-product index:
the query is normalised (after centring), and the index's candidates, over-fetched
:data:`COSINE_OVERFETCH` times, are re-scored by cosine. The index is searched for ``k`` + the
number of excluded items, doubling while a row has fewer than ``k`` qualifying items; a
restrictive filter (at most ``exact_max`` items qualify), a cosine query on a catalog of at
most ``exact_max`` items, or an exhausted index is answered by exact scoring of the qualifying
items, so a query returns exactly ``k`` results whenever ``k`` items qualify.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from kgrec.errors import RetrievalError
from kgrec.retrieval.index import VectorIndex

COSINE_OVERFETCH = 8  # cosine queries re-score this many times k inner-product candidates

Found = tuple[np.ndarray, np.ndarray]  # one query row's catalog positions and scores, best first


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest of ``scores`` ``(m,)``, best first, equal scores by index and
    NaN as ``-inf``: the first ``k`` of a stable sort, without sorting them all (``argpartition``
    alone cut and ordered ties in no fixed way: a larger ``k`` reordered the items before)."""
    key = -np.asarray(scores, dtype=np.float64)
    key[np.isnan(key)] = np.inf
    kk = max(0, min(k, len(key)))
    if kk == 0:
        return np.zeros(0, np.int64)
    if kk < len(key):
        bound = np.partition(key, kk - 1)[kk - 1]  # the k-th best score
        better = np.flatnonzero(key < bound)
        top = np.concatenate([better, np.flatnonzero(key == bound)[: kk - len(better)]])
    else:
        top = np.arange(len(key))
    return top[np.argsort(key[top], kind="stable")]


def nearest(
    index: VectorIndex,
    vectors: np.ndarray,
    active: np.ndarray,
    queries: np.ndarray,
    k: int,
    allowed: np.ndarray | None,
    excluded: Sequence[np.ndarray] | None,
    cosine: bool,
    centre: np.ndarray | None = None,
    *,
    exact_max: int,
) -> list[Found]:
    """The ``k`` best positions and their scores for each query row ``(B, d)`` (module docstring).

    ``index`` holds the ``active`` ``(n,)`` rows of ``vectors`` ``(n, d)`` under their positions;
    ``allowed`` ``(n,)`` bool limits the candidates (default: the active ones); ``excluded`` gives
    per row positions to leave out; ``centre`` ``(d,)`` is subtracted from queries and vectors
    alike for ``cosine``; up to ``exact_max`` qualifying items are scored exactly. Rows return
    fewer than ``k`` only when fewer items qualify. Queries that are not finite or not ``d`` wide,
    and a ``k`` that is not a positive integer, are refused on every path, as the index does
    (:class:`RetrievalError`).
    """
    queries = check_queries(queries, vectors.shape[1], k)
    b = len(queries)
    if cosine:
        if centre is not None:
            queries = queries - centre
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    allowed = active.copy() if allowed is None else allowed & active
    excluded = list(excluded) if excluded is not None else [np.zeros(0, np.int64)] * b
    n_allowed = int(allowed.sum())
    if n_allowed == 0:
        return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(b)]
    filtered = n_allowed < index.count
    if (filtered and n_allowed <= exact_max) or (cosine and index.count <= exact_max):
        return exact_nearest(vectors, queries, k, np.flatnonzero(allowed), excluded, cosine, centre)
    results: list[Found | None] = [None] * b
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
            if cosine:  # scored from the vectors, as exact_nearest does: <q, x> - <q, c> cancelled
                # to rounding noise near the centre, divided by a norm near 0 (an item at the centre scored 1e5)
                shifted = vectors[got] - centre if centre is not None else vectors[got]
                got_s = shifted @ queries[row] / np.maximum(np.linalg.norm(shifted, axis=1), 1e-12)
            elif approximate:  # PQ codes' scores are approximate; the catalog holds the exact vectors
                got_s = vectors[got] @ queries[row]
            if cosine or approximate:
                order = np.argsort(-got_s, kind="stable")
                got, got_s = got[order], got_s[order]
            if len(got) >= k and (not cosine or len(got) >= min(n_allowed, k * COSINE_OVERFETCH)):
                results[row] = (got[:k], got_s[:k])
            elif fetch >= total:
                results[row] = exact_nearest(
                    vectors, queries[row : row + 1], k, np.flatnonzero(allowed), [excluded[row]], cosine, centre
                )[0]
            else:
                still.append(row)
        pending = np.asarray(still, dtype=np.int64)
        fetch *= 2
    return results  # type: ignore[return-value]


def check_queries(queries: np.ndarray, dim: int, k: int) -> np.ndarray:
    """``queries`` as float32 ``(B, dim)``; :class:`RetrievalError` in the words of
    :meth:`VectorIndex.search` for a row that is not finite, another width or a ``k`` that is not a
    positive integer (exact scoring answered a NaN query with no item, as if none qualified)."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise RetrievalError(f"queries: expected shape (B, {dim}), got {queries.shape}")
    if not np.isfinite(queries).all():
        row = int(np.flatnonzero(~np.isfinite(queries).all(1))[0])
        raise RetrievalError(f"queries: row {row} is not finite (NaN or inf); the model or its inputs are broken")
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise RetrievalError(f"k must be a positive integer, got {k!r}")
    return queries


def exact_nearest(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    subset: np.ndarray,
    excluded: Sequence[np.ndarray],
    cosine: bool,
    centre: np.ndarray | None = None,
) -> list[Found]:
    """Exact top-``k`` over positions ``subset`` of ``vectors`` ``(n, d)`` (one matrix product
    per 1024 rows); ``queries`` come normalised (and centred) when ``cosine``."""
    local = np.full(len(vectors), -1, dtype=np.int64)
    local[subset] = np.arange(len(subset))
    vectors = vectors[subset]  # (m, d)
    if cosine:
        if centre is not None:
            vectors = vectors - centre
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out = []
    for start in range(0, len(queries), 1024):
        scores = queries[start : start + 1024] @ vectors.T  # (B, m)
        for r, row in enumerate(scores):
            drop = local[excluded[start + r]] if len(excluded[start + r]) else np.zeros(0, np.int64)
            row[drop[drop >= 0]] = -np.inf
            top = top_k(row, k)
            top = top[np.isfinite(row[top])]
            out.append((subset[top], row[top].astype(np.float32)))
    return out
