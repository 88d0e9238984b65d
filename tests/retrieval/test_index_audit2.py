"""FAISS index, second audit: ivfpq's default ``pq_m`` on any dimension, damaged or swapped
``index.faiss`` files, manifests whose ``params`` are not an object."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval import IndexConfig, VectorIndex, load_index, vectors_sha256


def vectors(n: int = 300, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def saved(folder: Path, data: np.ndarray, kind: str = "flat") -> str:
    ids = np.arange(len(data))
    checksum = vectors_sha256(ids, data)
    VectorIndex.build(data, ids, IndexConfig(kind=kind)).save(folder, checksum)
    return checksum


@pytest.mark.parametrize(("dim", "pq_m"), [(18, 3), (50, 10), (13, 1), (64, 16), (6, 1)])
def test_ivfpq_default_pq_m_divides_any_dimension(dim, pq_m):
    """The default was ``d // 4`` whether or not it divides ``d``: on 50-d vectors ``--kind ivfpq``
    (and ``auto`` past 10M items) failed with "pq_m=12 must divide the vector dimension 50", an
    option the user never gave."""
    assert IndexConfig(kind="ivfpq").resolved(5000, dim).pq_m == pq_m
    assert IndexConfig().resolved(20_000_000, dim).pq_m == pq_m  # auto: ivfpq
    data = vectors(400, dim)
    index = VectorIndex.build(data, config=IndexConfig(kind="ivfpq", nprobe=64, refine=100))
    assert index.config.pq_m == pq_m
    _, ids = index.search(data[:3], 5)  # 500 candidates re-scored exactly: all 400 items
    np.testing.assert_array_equal(ids, np.argsort(-(data[:3] @ data.T), axis=1)[:, :5])
    with pytest.raises(RetrievalError, match="pq_m=4 must divide the vector dimension 18"):
        IndexConfig(kind="ivfpq", pq_m=4).resolved(5000, 18)  # one the user gave is still refused


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_an_index_file_with_a_damaged_vector_is_refused(tmp_path: Path, kind):
    """FAISS read an ``index.faiss`` whose stored vector bytes had changed, and the index then
    answered from the damaged vector (item 7 scaled 1000x came first for every query with a
    positive score for it)."""
    data = vectors()
    saved(tmp_path / "ix", data, kind)
    path = tmp_path / "ix" / "index.faiss"
    raw = path.read_bytes()
    at = raw.find(data[7].tobytes())
    assert at > 0
    path.write_bytes(raw[:at] + (data[7] * 1000).tobytes() + raw[at + data[7].nbytes :])
    with pytest.raises(RetrievalError, match=r"index.faiss: its sha256 is not the one manifest.json records "
                                             r"\(damaged or replaced\); rebuild the index$"):  # fmt: skip
        load_index(tmp_path / "ix")


def test_an_index_file_swapped_for_one_from_other_vectors_is_refused(tmp_path: Path):
    """Same kind, dimension and count, so every manifest check passed and the index answered
    from the other vectors, although the manifest's ``vectors_sha256`` is this run's."""
    data = vectors()
    checksum = saved(tmp_path / "ix", data)
    saved(tmp_path / "other", vectors(seed=1))
    shutil.copyfile(tmp_path / "other" / "index.faiss", tmp_path / "ix" / "index.faiss")
    with pytest.raises(RetrievalError, match="sha256 is not the one manifest.json records.*; do this$"):
        load_index(tmp_path / "ix", {"vectors_sha256": checksum}, hint="do this")


def test_a_manifest_without_the_file_checksum_still_loads_and_saves_are_byte_stable(tmp_path: Path):
    """Indexes saved before the checksum was recorded open as before; a save of a loaded index
    writes the same bytes (checksum included)."""
    data = vectors()
    checksum = saved(tmp_path / "ix", data, "hnsw")
    loaded, manifest = load_index(tmp_path / "ix")
    loaded.search(data[:2], 200)  # raises efSearch for the call
    loaded.save(tmp_path / "again", checksum)
    for name in ("index.faiss", "manifest.json"):
        assert (tmp_path / "ix" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    path = tmp_path / "ix" / "manifest.json"
    path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "index_sha256"}))
    old, _ = load_index(tmp_path / "ix")
    np.testing.assert_array_equal(old.search(data[:3], 4)[1], loaded.search(data[:3], 4)[1])


@pytest.mark.parametrize("params", [[1, 2], "flat", 3])
def test_a_manifest_whose_params_are_not_an_object_is_refused_in_one_line(tmp_path: Path, params):
    """``params`` a list or a string raised ``AttributeError: 'list' object has no attribute
    'items'`` (a traceback) instead of naming the file and what to do."""
    saved(tmp_path / "ix", vectors())
    path = tmp_path / "ix" / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "params": params}))
    with pytest.raises(RetrievalError, match=r"manifest.json: manifest field 'params' is not an object; rebuild the index$"):
        load_index(tmp_path / "ix")
