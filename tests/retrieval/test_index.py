"""FAISS index: exact search equals brute force, save/load round trip, manifest checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval import IndexConfig, VectorIndex, load_index, vectors_sha256


def clustered(n: int, d: int, seed: int = 0, clusters: int = 20, rank: int = 6) -> np.ndarray:
    """Mixture of low-rank clusters (like trained embeddings), not isotropic noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, rank)))[0].T  # (rank, d)
    centers = rng.standard_normal((clusters, rank)) * 2
    z = centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, rank))
    return (z @ basis + 0.05 * rng.standard_normal((n, d))).astype(np.float32)


def brute_force(queries: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth, strict=True)]))


def test_flat_search_equals_brute_force_topk_single_and_batched():
    vectors, queries = clustered(3000, 32), clustered(40, 32, seed=1)
    index = VectorIndex.build(vectors, config=IndexConfig(kind="flat"))
    truth = brute_force(queries, vectors, 10)
    for batch in (queries[:1], queries[:5], queries):  # scalar path and BLAS path
        scores, ids = index.search(batch, 10)
        np.testing.assert_array_equal(ids, truth[: len(batch)])
        np.testing.assert_allclose(scores, np.take_along_axis(batch @ vectors.T, ids, 1), rtol=1e-4, atol=1e-4)


def test_ids_are_the_given_catalog_positions_and_k_beyond_count_pads():
    vectors = clustered(50, 8)
    ids = np.arange(50) * 3 + 100
    index = VectorIndex.build(vectors, ids, IndexConfig(kind="flat"))
    scores, found = index.search(vectors[:2], 60)
    assert set(found[0][:50]) == set(ids.tolist())
    assert (found[:, 50:] == -1).all() and np.isneginf(scores[:, 50:]).all()


def test_auto_kind_is_flat_for_small_catalogs_and_resolves_ivf_parameters():
    assert IndexConfig().resolved(5000, 64).kind == "flat"
    assert IndexConfig().resolved(200_000, 64).kind == "hnsw"
    ivf = IndexConfig(kind="ivfpq").resolved(5000, 64)
    assert ivf.nlist <= 5000 // 39 and ivf.pq_m == 16 and ivf.pq_bits <= 8
    with pytest.raises(RetrievalError, match="pq_m=5 must divide"):
        IndexConfig(kind="ivfpq", pq_m=5).resolved(5000, 64)
    with pytest.raises(RetrievalError, match="index kind 'annoy'"):
        IndexConfig(kind="annoy")


def test_hnsw_and_ivfpq_recall_on_clustered_vectors():
    vectors, queries = clustered(4000, 32), clustered(50, 32, seed=2)
    truth = brute_force(queries, vectors, 10)
    hnsw = VectorIndex.build(vectors, config=IndexConfig(kind="hnsw", ef_search=256))
    assert recall(hnsw.search(queries, 10)[1], truth) >= 0.9
    ivf = VectorIndex.build(vectors, config=IndexConfig(kind="ivfpq", nprobe=32, refine=8))
    assert recall(ivf.search(queries, 10)[1], truth) >= 0.75


def test_save_load_round_trip(tmp_path: Path):
    vectors, queries = clustered(500, 16), clustered(5, 16, seed=3)
    ids = np.arange(500, dtype=np.int64)
    for kind in ("flat", "hnsw", "ivfpq"):
        index = VectorIndex.build(vectors, ids, IndexConfig(kind=kind))
        checksum = vectors_sha256(ids, vectors)
        index.save(tmp_path / kind, checksum, {"run": {"vectors_sha256": "abc"}})
        loaded, manifest = load_index(tmp_path / kind, {"vectors_sha256": checksum, "run": {"vectors_sha256": "abc"}})
        assert manifest["kind"] == kind and manifest["metric"] == "inner_product" and manifest["dim"] == 16
        assert manifest["count"] == 500 and manifest["params"]["kind"] == kind
        assert loaded.config == index.config
        for a, b in zip(index.search(queries, 7), loaded.search(queries, 7), strict=True):
            np.testing.assert_array_equal(a, b)


def test_load_refuses_a_manifest_that_does_not_match(tmp_path: Path):
    vectors = clustered(200, 16)
    ids = np.arange(200)
    index = VectorIndex.build(vectors, ids, IndexConfig(kind="flat"))
    index.save(tmp_path / "ix", vectors_sha256(ids, vectors), {"run": {"vectors_sha256": "abc"}})
    other = vectors_sha256(ids, vectors + 1)
    with pytest.raises(RetrievalError, match="index does not match this run.*vectors_sha256.*rebuild"):
        load_index(tmp_path / "ix", {"vectors_sha256": other})
    with pytest.raises(RetrievalError, match="run.vectors_sha256"):
        load_index(tmp_path / "ix", {"run": {"vectors_sha256": "def"}})
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps({**manifest, "kind": "hnsw"}))
    with pytest.raises(RetrievalError, match="holds IndexFlatIP, the manifest says 'hnsw'"):
        load_index(tmp_path / "ix")
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps({**manifest, "count": 7}))
    with pytest.raises(RetrievalError, match="200 vectors"):
        load_index(tmp_path / "ix")
    (tmp_path / "ix" / "manifest.json").write_text("{not json")
    with pytest.raises(RetrievalError, match="not valid JSON"):
        load_index(tmp_path / "ix")
    with pytest.raises(RetrievalError, match="no index here"):
        load_index(tmp_path / "missing")


def test_remove_in_place_or_report_a_rebuild_is_needed():
    vectors = clustered(300, 16)
    flat = VectorIndex.build(vectors, config=IndexConfig(kind="flat"))
    assert flat.remove(np.array([0, 1, 2])) and flat.count == 297
    assert not set(flat.search(vectors[:3], 5)[1].ravel()) & {0, 1, 2}
    hnsw = VectorIndex.build(vectors, config=IndexConfig(kind="hnsw"))
    assert not hnsw.remove(np.array([0]))  # HNSW cannot remove: the caller rebuilds
    ivfpq = VectorIndex.build(vectors, config=IndexConfig(kind="ivfpq", nlist=4, nprobe=4, pq_m=4, pq_bits=4))
    assert not ivfpq.remove(np.arange(0, 300, 2))  # in place it would map survivors to other ids
    assert ivfpq.count == 300 and np.array_equal(ivfpq.ids(), np.arange(300))  # untouched
    flat.add(vectors[:1] * 10, np.array([1000]))
    assert flat.search(vectors[:1], 1)[1][0, 0] == 1000


def test_nan_vectors_are_refused():
    vectors = clustered(20, 8)
    vectors[3, 2] = np.nan
    with pytest.raises(RetrievalError, match="row 3 is not finite"):
        VectorIndex.build(vectors)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ivfpq_builds_on_a_catalog_cut_down_to_a_few_items(n):
    """Removing items until one is left made the ivfpq rebuild fail in FAISS (PQ's k-means needs
    2^bits training points), so the run answered "rebuild the index" to every query."""
    vectors = clustered(n, 16)
    ids = np.arange(100, 100 + n)
    index = VectorIndex.build(vectors, ids, IndexConfig(kind="ivfpq"))
    assert index.kind == "ivfpq" and index.count == n
    scores, found = index.search(vectors, n + 1)
    assert all(set(row[:n]) == set(ids) for row in found) and (found[:, n] == -1).all()
