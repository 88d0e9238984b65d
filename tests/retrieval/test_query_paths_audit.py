"""Query paths checked against brute force (numpy over every item): ``similar``, ``search``,
``recommend`` and new users, ties, catalog changes, vectors at the centre, refused input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval import Recommender
from kgrec.retrieval.index import IndexConfig, VectorIndex
from kgrec.retrieval.nearest import nearest, top_k
from kgrec.retrieval.new_user_query import fold_in_vector
from kgrec.retrieval.text_query import check_query_text


def stable_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Brute force: the first ``k`` of a stable sort, best first, NaN counted as ``-inf``."""
    key = np.where(np.isnan(scores), np.inf, -np.asarray(scores, np.float64))
    return np.argsort(key, kind="stable")[:k]


def centred_cosines(vectors: np.ndarray, centre: np.ndarray, query: np.ndarray) -> np.ndarray:
    shifted = vectors.astype(np.float64) - centre
    q = query.astype(np.float64) - centre
    return shifted @ q / np.maximum(np.linalg.norm(shifted, axis=1) * np.linalg.norm(q), 1e-12)


def test_top_k_is_a_stable_sort_prefix_whatever_the_ties_nan_and_k():
    """``argpartition`` cut and ordered equal scores in no fixed way: ``top_k([1, 0 x20, 2, 0 x12], 5)``
    gave ``[21, 0, 2, 1, 4]``, so ``search`` put the second of two items with the same text first
    ("Chasing Amy" on ml-100k: item 268 before 246), and a larger k reordered the list."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(0, 50))
        scores = rng.integers(-2, 3, n).astype(np.float32)
        scores[rng.random(n) < 0.1] = np.nan
        scores[rng.random(n) < 0.1] = -np.inf
        for k in (0, 1, 3, 7, n, n + 5):
            assert top_k(scores, k).tolist() == stable_top(scores, k).tolist()
    ties = np.zeros(34, np.float32)
    ties[0], ties[21] = 1, 2
    assert top_k(ties, 5).tolist() == [21, 0, 1, 2, 3]
    assert top_k(ties, 0).dtype == np.int64


def test_exact_cosine_lists_items_with_the_same_vector_by_position_for_every_k():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    vectors[[3, 9, 17, 25, 33]] = vectors[30]  # five copies of one item
    index = VectorIndex.build(vectors, np.arange(40), IndexConfig(kind="flat"))
    centre = vectors.mean(0)
    active = np.ones(40, bool)
    for k in (2, 4, 6, 10):
        [(found, _)] = nearest(index, vectors, active, vectors[30], k, None, [np.asarray([30])], True, centre,
                               exact_max=1000)  # fmt: skip
        assert found.tolist()[:5] == [3, 9, 17, 25, 33][: min(k, 5)]


def test_cosine_through_the_index_scores_an_item_at_the_centre_zero():
    """Through the index a cosine was ``<q, x> - <q, c>`` over ``|x - c|``: for an item at the centre,
    rounding noise over 1e-12, a "cosine" of +-5e5 (first in the list when positive)."""
    rng = np.random.default_rng(0)
    n, d = 400, 64
    centre = rng.normal(size=d).astype(np.float32)
    vectors = (centre + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
    vectors[7] = centre
    index = VectorIndex.build(vectors, np.arange(n), IndexConfig(kind="flat"))
    queries = rng.normal(size=(10, d)).astype(np.float32)
    found = nearest(index, vectors, np.ones(n, bool), queries, n, None, None, True, centre, exact_max=0)
    for query, (positions, scores) in zip(queries, found, strict=True):
        truth = centred_cosines(vectors, centre, query)
        assert len(positions) == n and np.abs(scores).max() <= 1 + 1e-5
        np.testing.assert_allclose(scores, truth[positions], atol=1e-5)
        assert scores[positions == 7] == 0


@pytest.mark.parametrize("cosine", [False, True])
def test_nearest_equals_brute_force_under_filters_exclusions_and_removed_items(cosine: bool):
    rng = np.random.default_rng(2)
    n, d = 500, 16
    vectors = (rng.normal(size=(n, d)) + 0.5).astype(np.float32)
    active = rng.random(n) > 0.1
    index = VectorIndex.build(vectors[active], np.flatnonzero(active), IndexConfig(kind="flat"))
    centre = vectors.mean(0) if cosine else None
    for trial in range(30):
        queries = rng.normal(size=(3, d)).astype(np.float32)
        k = int(rng.integers(1, 80))
        allowed = rng.random(n) < (1.0, 0.5, 0.03)[trial % 3]
        excluded = [rng.choice(n, int(rng.integers(0, 40)), replace=False) for _ in range(3)]
        for exact_max in (0, 10_000):  # through the index, and exactly
            found = nearest(index, vectors, active, queries, k, allowed, excluded, cosine, centre, exact_max=exact_max)
            for query, gone, (positions, scores) in zip(queries, excluded, found, strict=True):
                truth = centred_cosines(vectors, centre, query) if cosine else vectors.astype(np.float64) @ query
                truth[~(allowed & active)] = -np.inf
                truth[gone] = -np.inf
                expected = stable_top(truth, k)
                expected = expected[np.isfinite(truth[expected])]
                assert len(positions) == len(expected)  # exactly k whenever k qualify
                np.testing.assert_allclose(scores, truth[expected], atol=1e-5)
                assert np.isfinite(truth[positions]).all()


def test_fold_in_refuses_liked_positions_that_are_not_candidates():
    """A removed (or out-of-catalog) liked position was looked up with ``searchsorted`` among the
    candidates, so the user was silently fitted to the next active item instead."""
    vectors = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    candidates = np.asarray([0, 1, 3, 4, 5])  # position 2 removed
    assert fold_in_vector(vectors, candidates, np.zeros(4, np.float32), np.asarray([1, 3])).shape == (4,)
    for liked in ([2], [1, 9]):
        with pytest.raises(RetrievalError, match="not candidates"):
            fold_in_vector(vectors, candidates, np.zeros(4, np.float32), np.asarray(liked))


def test_a_long_text_without_words_is_refused_in_a_short_message():
    """The message quoted the whole text: a megabyte of "?" came back as a megabyte of error."""
    with pytest.raises(RetrievalError, match="has no words") as error:
        check_query_text("?" * 1_000_000)
    assert len(str(error.value)) < 300
    with pytest.raises(RetrievalError, match=r"the query text '\?\?\?' has no words"):
        check_query_text("  ???  ")
    with pytest.raises(RetrievalError, match="empty"):
        check_query_text(" \t\n")


def write_twins(folder: Path) -> tuple[Path, Path, Path]:
    """Three new items with the same links and triples (so the same vector), and one other."""
    (folder / "t.item").write_text("item_id:token\ttitle:token\tclass:token_seq\n"
                                   "t0\tTwin 0\tComedy\nt1\tTwin 1\tComedy\nt2\tTwin 2\tComedy\nt3\tOther\tHorror\n")  # fmt: skip
    (folder / "t.link").write_text("item_id:token\tentity_id:token\nt0\tnt0\nt1\tnt1\nt2\tnt2\nt3\tnt3\n")
    triples = [f"nt{j}\tfilm.genre\tg0" for j in range(3)] + [f"nt{j}\tfilm.directed_by\td0_0" for j in range(3)]
    (folder / "t.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\n" + "\n".join(triples)
                                 + "\nnt3\tfilm.genre\tg3\n")  # fmt: skip
    return folder / "t.item", folder / "t.link", folder / "t.kg"


def test_queries_after_adding_and_removing_items_equal_brute_force(run_copy: Path, tmp_path: Path):
    rec = Recommender.open(run_copy)
    rec.add_items(*write_twins(tmp_path))
    rec.remove_items(["i4", "i9", "t2"])
    c = rec.catalog
    twins = [c.position(t) for t in ("t0", "t1")]
    assert np.array_equal(c.vectors[twins[0]], c.vectors[twins[1]])
    active, vectors = c.active, c.vectors.astype(np.float64)
    # similar: centred cosine over the active items, the item left out; the twins in position order
    for item in ("i0", "t0", "t3"):
        truth = centred_cosines(c.vectors, rec.item_centre, c.vectors[c.position(item)])
        truth[~active] = -np.inf
        truth[c.position(item)] = -np.inf
        for k in (3, 20, c.n_active - 1):
            results = rec.similar(item, k, explain=False)
            assert [r.item_id for r in results] == [c.tokens[p] for p in stable_top(truth, k)]
            np.testing.assert_allclose([r.score for r in results], truth[stable_top(truth, k)], atol=1e-5)
    # recommend: inner product over the active items the user never saw
    for user in ("u0", "u3"):
        u = rec.user_index(user)
        truth = vectors @ rec.user_vectors[u]
        truth[~active] = -np.inf
        truth[rec.seen_items(u)] = -np.inf
        results = rec.recommend(user, 15, explain=False)
        np.testing.assert_allclose([r.score for r in results], truth[stable_top(truth, 15)], rtol=1e-5, atol=1e-5)
        assert {r.item_id for r in results}.isdisjoint({"i4", "i9", "t2"})
    # a new user who liked an added item (twice) and a trained one: both left out
    query = rec.new_user_vector(["t0", "i1", "t0"])
    truth = vectors @ query
    truth[~active] = -np.inf
    truth[[c.position("t0"), c.position("i1")]] = -np.inf
    results = rec.recommend_for_new_user(["t0", "i1", "t0"], k=c.n_active - 2, explain=False)
    assert len(results) == c.n_active - 2 and {r.item_id for r in results}.isdisjoint({"t0", "i1", "i4", "i9", "t2"})
    np.testing.assert_allclose([r.score for r in results], truth[stable_top(truth, len(results))], atol=1e-5)
    np.testing.assert_allclose(query, rec.new_user_vector(["i1", "t0"]), atol=1e-6)  # order and repeats do not count


def test_a_query_text_cut_at_the_token_limit_is_said_so_about_the_query(text_run: Path):
    """The encoder's own warning advised reordering text.template, which a query has nothing to do with."""
    import warnings

    from kgrec.retrieval import Recommender
    from kgrec.text import TextTruncatedWarning

    rec = Recommender.open(text_run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec.search("film " * 600, k=3, explain=False)
        rec.search("animated film", k=3, explain=False)
    said = [str(w.message) for w in caught if issubclass(w.category, TextTruncatedWarning)]
    assert said == ["the query text is longer than the text model reads (256 tokens): only its start counts"]
