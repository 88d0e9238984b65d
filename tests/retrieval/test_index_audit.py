"""FAISS index: parameters FAISS cannot take, queries it cannot answer (an audit's findings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval import IndexConfig, VectorIndex, load_index, vectors_sha256


def vectors(n: int = 300, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_hnsw_with_one_link_per_node_is_refused_before_faiss_crashes():
    """``--hnsw-m 1`` killed the process with a segmentation fault inside FAISS (its level
    multiplier is 1 / ln M), whatever the catalog."""
    with pytest.raises(RetrievalError, match="hnsw_m: expected at least 2 links per node, got 1"):
        IndexConfig(kind="hnsw", hnsw_m=1)
    index = VectorIndex.build(vectors(), config=IndexConfig(kind="hnsw", hnsw_m=2))
    assert (index.search(vectors()[:3], 5)[1] >= 0).all()


@pytest.mark.parametrize("name", ["hnsw_m", "ef_construction", "ef_search"])
def test_hnsw_parameters_beyond_a_c_int_are_refused_in_one_line(name):
    """FAISS holds them in a C int: the build raised an OverflowError traceback."""
    with pytest.raises(RetrievalError, match=f"index {name}: expected at most 2,147,483,647"):
        IndexConfig(kind="hnsw", **{name: 2**31})


def test_a_refine_of_true_is_refused_like_the_other_integers():
    with pytest.raises(RetrievalError, match="index refine: expected an integer >= 0, got True"):
        IndexConfig(kind="ivfpq", refine=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_query_that_is_not_finite_is_refused_not_answered_with_no_items(kind, bad):
    """Every kind answered a NaN query with ids -1 alone, as if the catalog were empty."""
    index = VectorIndex.build(vectors(), config=IndexConfig(kind=kind))
    queries = vectors(3, seed=1)
    queries[1, 4] = bad
    with pytest.raises(RetrievalError, match="queries: row 1 is not finite"):
        index.search(queries, 5)


def test_k_may_be_a_numpy_integer_and_must_be_an_integer():
    """A numpy k (``min(k, array.size)``) raised FAISS's SWIG overload TypeError; a float k did too."""
    data = vectors()
    index = VectorIndex.build(data, config=IndexConfig(kind="flat"))
    _, ids = index.search(data[:2], np.int64(4))
    np.testing.assert_array_equal(ids, np.argsort(-(data[:2] @ data.T), axis=1)[:, :4])
    with pytest.raises(RetrievalError, match="k must be a positive integer, got 4.0"):
        index.search(data[:2], 4.0)


def test_a_manifest_whose_params_are_out_of_range_names_the_file_and_what_to_do(tmp_path: Path):
    data = vectors()
    ids = np.arange(len(data))
    VectorIndex.build(data, ids, IndexConfig(kind="flat")).save(tmp_path / "ix", vectors_sha256(ids, data))
    path = tmp_path / "ix" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "params": {**manifest["params"], "ef_search": 0}}))
    with pytest.raises(RetrievalError, match=r"manifest.json: params: index ef_search: .*; rebuild the index"):
        load_index(tmp_path / "ix")
