r"""FAISS indexes over item vectors: exact, HNSW and IVF-PQ, saved with a validated manifest.

Every kind ranks items by the retrieval tower's score, the inner product

.. math::
    s(\mathbf{q}, \mathbf{x}_i) = \langle \mathbf{q}, \mathbf{x}_i \rangle,
    \qquad \mathrm{top}_k(\mathbf{q}) = \operatorname{arg\,top\text{-}k}_{i}\ s(\mathbf{q}, \mathbf{x}_i),

so every FAISS index here uses ``METRIC_INNER_PRODUCT`` on the raw (not normalised) vectors.

Kinds (:class:`IndexConfig`):

* ``flat``: exact search (``IndexFlatIP``). A batch of :math:`B` queries is one matrix product
  :math:`\mathbf{Q}\mathbf{X}^\top` per block of items followed by a top-:math:`k` heap per
  query. Two things keep that near the machine's matrix-multiply rate. FAISS 1.15 only takes
  the BLAS path when ``nq * d`` exceeds ``distance_compute_blas_threshold`` (128000 by default,
  so 1024 queries of :math:`d = 64` went through the scalar loop at a fifth of the BLAS speed):
  :meth:`VectorIndex.search` lowers it to :data:`BLAS_MIN_QUERIES` queries, where BLAS starts
  to win. And FAISS's own threading splits each small (queries x 1024 items) product between
  threads and synchronises after every block, which wasted most of a second core (a tenth of
  the GEMM rate on a loaded 2-core machine): batches are instead split into one shard of
  queries per thread, each searched by single-threaded FAISS on a worker thread (FAISS
  releases the GIL), so each core runs long independent GEMMs.
* ``hnsw``: ``IndexHNSWFlat`` on the inner product directly (ip-NSW: Morozov & Babenko,
  "Non-metric similarity graphs for maximum inner product search", NeurIPS 2018). The usual
  reduction of MIPS to L2 (append :math:`\sqrt{M^2 - \lVert\mathbf{x}\rVert^2}`) recalled far
  less on trained-like vectors in our tests, as that paper also reports. Parameters: ``hnsw_m``
  links per node, ``ef_construction``, and the search-time ``ef_search``.
* ``ivfpq``: ``IndexIVFPQ``: a coarse k-means quantizer into ``nlist`` cells (inner-product
  assignment), residuals product-quantized into ``pq_m`` sub-vectors of ``pq_bits`` bits;
  ``nprobe`` cells are scanned per query. With ``refine > 0`` the ``refine * k`` best PQ
  candidates are re-scored exactly (``IndexRefineFlat``), which keeps a flat copy in memory.

``auto`` picks ``flat`` up to :data:`FLAT_MAX` items, ``hnsw`` up to :data:`HNSW_MAX`, else
``ivfpq``. Every index is wrapped in an ``IndexIDMap``: its ids are the catalog positions the
caller gives (:mod:`kgrec.retrieval.catalog` maps them to raw item tokens).

On disk an index is a folder with ``index.faiss`` and ``manifest.json`` (kind, metric,
dimension, count, resolved parameters, sha256 of the indexed ids and vectors and of
``index.faiss`` itself, plus what the caller adds, e.g. the run it belongs to), written
atomically and checked when read (:func:`load_index`): any mismatch raises
:class:`~kgrec.errors.RetrievalError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import RetrievalError
from kgrec.utils.io import atomic_dir, restore_interrupted_dir, sha256_file, write_json

KINDS = ("flat", "hnsw", "ivfpq")
METRIC = "inner_product"
FLAT_MAX = 100_000
HNSW_MAX = 10_000_000
REFINE_MAX = 1000  # IndexRefineFlat.k_factor: faiss.read_index refuses a saved factor above it
INT_MAX = 2**31 - 1  # FAISS's C int parameters (HNSW M, efConstruction, efSearch)
BLAS_MIN_QUERIES = 6  # measured crossover of FAISS's scalar and BLAS exact paths (d = 64 and 128)
SHARD_MIN_QUERIES = 8  # per thread: smaller exact batches run on the calling thread
FORMAT = "kgrec-index"
FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
MANIFEST = "manifest.json"
INDEX_SHA256 = "index_sha256"  # manifest field: sha256 of index.faiss (absent from manifests written before it)


def _faiss():
    import faiss

    return faiss


@dataclass
class IndexConfig:
    """Which FAISS index to build and how to search it.

    Attributes:
        kind: ``auto``, ``flat``, ``hnsw`` or ``ivfpq`` (``auto``: by catalog size, see the
            module docstring).
        hnsw_m: HNSW links per node, at least 2 (memory grows with it, and so does recall).
        ef_construction: HNSW candidate list while building.
        ef_search: HNSW candidate list while searching (raised to ``k`` when smaller).
        nlist: IVF cells; ``None``: :math:`4\\sqrt{n}`, at most ``n / 39`` (k-means needs
            about 39 training points per centroid).
        nprobe: IVF cells scanned per query.
        pq_m: PQ sub-vectors (must divide the dimension); ``None``: ``d / 4`` (16 bytes per
            64-d vector at 8 bits), or the largest divisor of ``d`` below it.
        pq_bits: bits per PQ code (lowered for catalogs too small to train 256 centroids).
        refine: re-score ``refine * k`` IVF-PQ candidates exactly (0: off; at most
            :data:`REFINE_MAX`, the largest factor FAISS reads back).
    """

    kind: str = "auto"
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 16
    pq_m: int | None = None
    pq_bits: int = 8
    refine: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("auto", *KINDS):
            raise RetrievalError(f"index kind '{self.kind}': expected one of auto, {', '.join(KINDS)}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe", "pq_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RetrievalError(f"index {name}: expected a positive integer, got {value!r}")
        for name in ("nlist", "pq_m"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise RetrievalError(f"index {name}: expected a positive integer or None, got {value!r}")
        if not isinstance(self.refine, int) or isinstance(self.refine, bool) or self.refine < 0:
            raise RetrievalError(f"index refine: expected an integer >= 0, got {self.refine!r}")
        if self.hnsw_m < 2:  # FAISS spreads levels by 1 / ln(M): with M = 1 the build crashed the process
            raise RetrievalError(f"index hnsw_m: expected at least 2 links per node, got {self.hnsw_m}")
        for name in ("hnsw_m", "ef_construction", "ef_search"):  # nlist and nprobe are lowered to fit the catalog
            value = getattr(self, name)
            if value > INT_MAX:  # FAISS holds them in a C int: it raised an OverflowError traceback
                raise RetrievalError(f"index {name}: expected at most {INT_MAX:,}, got {value:,}")
        if self.refine > REFINE_MAX:  # FAISS saves a larger factor but refuses to read it back
            raise RetrievalError(f"index refine: expected at most {REFINE_MAX} (FAISS's limit), got {self.refine}")
        if self.pq_bits > 16:
            raise RetrievalError(f"index pq_bits: expected at most 16, got {self.pq_bits}")

    def resolved(self, n: int, dim: int) -> IndexConfig:
        """A copy with ``kind`` and the size-dependent parameters fixed for ``n`` vectors of ``dim``."""
        kind = self.kind
        if kind == "auto":
            kind = "flat" if n <= FLAT_MAX else "hnsw" if n <= HNSW_MAX else "ivfpq"
        out = replace(self, kind=kind)
        if kind == "ivfpq":
            nlist = self.nlist or max(1, int(round(4 * math.sqrt(n))))
            out.nlist = max(1, min(nlist, n // 39 or 1))
            # d / 4, or the largest divisor below it (d = 50: 12 would divide no 50-d vector into sub-vectors)
            pq_m = self.pq_m or max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)
            if dim % pq_m:
                raise RetrievalError(f"index pq_m={pq_m} must divide the vector dimension {dim}")
            out.pq_m = pq_m
            out.pq_bits = max(1, min(self.pq_bits, int(math.log2(max(2, n // 39)))))
        return out

    def search_params(self) -> dict[str, int]:
        """The parameters that may change without rebuilding."""
        return {"ef_search": self.ef_search, "nprobe": self.nprobe}

    def to_dict(self) -> dict[str, Any]:
        """The fields, as the manifest records them."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> IndexConfig:
        """Read :meth:`to_dict`'s output back (keys a newer kgrec wrote are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def vectors_sha256(ids: np.ndarray, vectors: np.ndarray) -> str:
    """sha256 over the int64 ids and the float32 vectors (little-endian, row-major)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(ids, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    return digest.hexdigest()


def _check_vectors(vectors: np.ndarray, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] < 1:
        raise RetrievalError(f"vectors: expected a (n, d) matrix, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        row = int(np.flatnonzero(~np.isfinite(vectors).all(1))[0])
        raise RetrievalError(f"vectors: row {row} is not finite (NaN or inf); the model or its inputs are broken")
    ids = np.arange(len(vectors), dtype=np.int64) if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
    if ids.shape != (len(vectors),):
        raise RetrievalError(f"ids: expected shape ({len(vectors)},), got {ids.shape}")
    return vectors, ids


@contextlib.contextmanager
def _blas_batches(dim: int) -> Iterator[None]:
    """Let FAISS's exact search use BLAS from :data:`BLAS_MIN_QUERIES` queries on.

    FAISS >= 1.10 compares ``nq * d`` with the threshold (default 128000), older versions
    ``nq`` (default 20); the default's size tells which rule this build follows."""
    faiss = _faiss()
    old = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES * (dim if old > 1000 else 1)
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = old


_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _one_faiss_thread() -> None:
    _faiss().omp_set_num_threads(1)  # OpenMP settings are per thread; OpenBLAS (OpenMP build) follows


def _shard_pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` workers that run FAISS single-threaded."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != threads:
            if _POOL is not None:
                _POOL[1].shutdown(wait=False)
            _POOL = (threads, ThreadPoolExecutor(threads, thread_name_prefix="kgrec-faiss", initializer=_one_faiss_thread))
        return _POOL[1]


class VectorIndex:
    """A FAISS index of item vectors under integer ids, searched by inner product.

    Build with :meth:`build`, read with :func:`load_index`. ``search`` returns the scores and
    ids of the ``k`` best items per query (``-1`` ids pad rows when fewer exist).
    """

    def __init__(self, index: Any, config: IndexConfig, dim: int) -> None:
        self.index = index
        self.config = config
        self.dim = dim
        self.build_seconds = 0.0
        self.apply_search_params()

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray | None = None, config: IndexConfig | None = None) -> VectorIndex:
        """Index ``vectors`` ``(n, d)`` under ``ids`` ``(n,)`` (default ``0 .. n-1``)."""
        faiss = _faiss()
        vectors, ids = _check_vectors(vectors, ids)
        n, dim = vectors.shape
        if n == 0:
            raise RetrievalError("cannot build an index over an empty catalog")
        config = (config or IndexConfig()).resolved(n, dim)
        started = time.perf_counter()
        ip = faiss.METRIC_INNER_PRODUCT
        if config.kind == "flat":
            base = faiss.IndexFlatIP(dim)
        elif config.kind == "hnsw":
            base = faiss.IndexHNSWFlat(dim, config.hnsw_m, ip)
            base.hnsw.efConstruction = config.ef_construction
        else:
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFPQ(quantizer, dim, config.nlist, config.pq_m, config.pq_bits, ip)
            sample = vectors  # k-means wants 39 .. 256 points per centroid; 64 keeps 1M-item builds near a minute
            cap = max(64 * config.nlist, 64 * 2**config.pq_bits)
            if n > cap:
                sample = vectors[np.random.default_rng(0).choice(n, cap, replace=False)]
            if n < 2**config.pq_bits:  # PQ's k-means needs 2^bits points: a catalog cut down to one item
                sample = np.tile(sample, (-(-(2**config.pq_bits) // n), 1))
            ivf.train(sample)
            base = ivf
            if config.refine:
                base = faiss.IndexRefineFlat(ivf)
                base.k_factor = float(config.refine)
        index = faiss.IndexIDMap(base)  # the Python wrappers keep base and quantizer alive
        index.add_with_ids(vectors, ids)
        out = cls(index, config, dim)
        out.build_seconds = time.perf_counter() - started
        return out

    # ------------------------------------------------------------------ properties
    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """The indexed ids, in the index's internal order."""
        faiss = _faiss()
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def memory_bytes(self) -> int:
        """Size of the serialized index (vectors or codes, graph links, id map)."""
        return int(_faiss().serialize_index(self.index).nbytes)

    def set_search_params(self, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change the search-time parameters (HNSW ``ef_search``, IVF ``nprobe``)."""
        changes = {k: v for k, v in (("ef_search", ef_search), ("nprobe", nprobe)) if v is not None}
        self.config = replace(self.config, **changes)
        self.apply_search_params()

    def apply_search_params(self) -> None:
        """Set the config's ``ef_search`` (HNSW) or ``nprobe`` (IVF, at most ``nlist``) on the
        FAISS index."""
        faiss = _faiss()
        base = faiss.downcast_index(self.index.index)
        if self.config.kind == "hnsw":
            base.hnsw.efSearch = self.config.ef_search
        elif self.config.kind == "ivfpq":
            ivf = faiss.extract_index_ivf(self.index)
            ivf.nprobe = min(self.config.nprobe, ivf.nlist)

    # ------------------------------------------------------------------ queries
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(B, k)`` float32 and ids ``(B, k)`` int64 of the best ``k`` items per query.

        Rows are sorted by decreasing score; missing results have id ``-1`` and score ``-inf``.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise RetrievalError(f"queries: expected shape (B, {self.dim}), got {queries.shape}")
        if not np.isfinite(queries).all():  # FAISS answered no item at all, as if the catalog were empty
            row = int(np.flatnonzero(~np.isfinite(queries).all(1))[0])
            raise RetrievalError(f"queries: row {row} is not finite (NaN or inf); the model or its inputs are broken")
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise RetrievalError(f"k must be a positive integer, got {k!r}")
        k = int(k)  # a numpy integer: FAISS's SWIG wrapper takes Python ints only
        k_index = min(k, self.count)
        if k_index == 0:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        if self.kind == "hnsw" and self.config.ef_search < k_index:
            base = _faiss().downcast_index(self.index.index)
            base.hnsw.efSearch = k_index
        try:
            with _blas_batches(self.dim):
                scores, ids = self._search(queries, k_index)
        finally:
            if self.kind == "hnsw":
                self.apply_search_params()
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        if k_index < k:
            pad = k - k_index
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        return scores, ids

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search; exact batches are sharded by query over single-threaded workers."""
        faiss = _faiss()
        threads = faiss.omp_get_max_threads()
        if threads < 2:
            return self.index.search(queries, k)
        if len(queries) < SHARD_MIN_QUERIES * threads:
            # A few queries: one thread. An OpenMP team would mostly wait at its barrier, and on a
            # loaded machine that wait cost ten times the search (24 ms instead of 2.5 ms).
            faiss.omp_set_num_threads(1)
            try:
                return self.index.search(queries, k)
            finally:
                faiss.omp_set_num_threads(threads)
        if self.kind != "flat":
            return self.index.search(queries, k)
        parts = np.array_split(queries, threads)
        found = list(_shard_pool(threads).map(lambda q: self.index.search(q, k), parts))
        return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])

    # ------------------------------------------------------------------ changes
    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors under new ids (the caller keeps ids unique)."""
        vectors, ids = _check_vectors(vectors, ids)
        if vectors.shape[1] != self.dim:
            raise RetrievalError(f"vectors: expected dimension {self.dim}, got {vectors.shape[1]}")
        self.index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> bool:
        """Remove ``ids``; ``False`` when this kind cannot remove in place (rebuild instead).

        Only ``flat`` removes in place. HNSW cannot remove at all, and an IVF index under FAISS's
        ``IndexIDMap`` keeps its internal ids while the id map compacts, so the surviving vectors
        would answer with other items' ids."""
        if self.kind != "flat":
            return False
        faiss = _faiss()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.index.remove_ids(faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids)))
        return True

    # ------------------------------------------------------------------ disk
    def manifest(self, vectors_checksum: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What ``manifest.json`` holds for this index."""
        import kgrec

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "metric": METRIC,
            "dim": self.dim,
            "count": self.count,
            "params": self.config.to_dict(),
            "vectors_sha256": vectors_checksum,
            "build_seconds": round(self.build_seconds, 4),
            "faiss_version": _faiss().__version__,
            "kgrec_version": kgrec.__version__,
            **dict(extra or {}),
        }

    def save(
        self,
        folder: str | Path,
        vectors_checksum: str,
        extra: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write ``folder`` (``index.faiss``, ``manifest.json`` and ``files``, a mapping of file
        name to JSON-able content) atomically, as a whole."""
        folder = Path(folder)
        manifest = self.manifest(vectors_checksum, extra)
        with atomic_dir(folder) as tmp:
            _faiss().write_index(self.index, str(tmp / INDEX_FILE))
            manifest[INDEX_SHA256] = sha256_file(tmp / INDEX_FILE)  # a damaged or swapped file loads fine in FAISS
            for name, content in (files or {}).items():
                (tmp / name).write_text(json.dumps(content), encoding="utf-8")
            write_json(tmp / MANIFEST, manifest)
        return folder

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self.kind!r}, count={self.count}, dim={self.dim})"


def read_index_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an index folder; :class:`RetrievalError` when absent or malformed."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise RetrievalError(f"{folder}: no index here (missing {MANIFEST}); build one with `kgrec index build`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise RetrievalError(f"{path}: not valid JSON ({error}); rebuild the index") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RetrievalError(f"{path}: not a kgrec index manifest (expected format '{FORMAT}')")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RetrievalError(
            f"{path}: index format version {manifest.get('format_version')}, this kgrec reads "
            f"{FORMAT_VERSION}; rebuild the index"
        )
    for key, kind in (("kind", str), ("metric", str), ("dim", int), ("count", int), ("vectors_sha256", str)):
        if not isinstance(manifest.get(key), kind):
            raise RetrievalError(f"{path}: manifest field '{key}' is missing or not a {kind.__name__}; rebuild the index")
    return manifest


def load_index(
    folder: str | Path, expected: Mapping[str, Any] | None = None, hint: str = "rebuild the index"
) -> tuple[VectorIndex, dict[str, Any]]:
    """Read an index folder and check it against its manifest and ``expected``.

    Args:
        folder: written by :meth:`VectorIndex.save`.
        expected: manifest fields that must hold these values (e.g. ``dim``, ``count``,
            ``vectors_sha256``, the run's checksum); nested dicts compare field by field.
        hint: what to do about a mismatch, appended to the error.

    Raises:
        RetrievalError: missing or unreadable files, an ``index.faiss`` whose sha256 is not the
            one its manifest records (damaged or replaced), a FAISS index that does not match
            its manifest (kind, metric, dimension, count), or a manifest that does not match
            ``expected``.
    """
    faiss = _faiss()
    folder = Path(folder)
    restore_interrupted_dir(folder)  # a crash mid-save leaves the previous index at .index.old
    manifest = read_index_manifest(folder)
    where = folder / MANIFEST
    for key, want in _flatten(expected or {}).items():
        got = _flatten(manifest).get(key)
        if got != want:
            raise RetrievalError(
                f"{folder}: index does not match this run ({key} is {_short(got)}, expected {_short(want)}); {hint}"
            )
    kind = manifest["kind"]
    if kind not in KINDS or manifest["metric"] != METRIC:
        raise RetrievalError(f"{where}: unknown kind '{kind}' or metric '{manifest['metric']}'; {hint}")
    path = folder / INDEX_FILE
    if not path.is_file():
        raise RetrievalError(f"{path}: index file missing; {hint}")
    recorded = manifest.get(INDEX_SHA256)
    if recorded is not None and recorded != sha256_file(path):  # a flipped byte in a vector read fine
        raise RetrievalError(f"{path}: its sha256 is not the one {MANIFEST} records (damaged or replaced); {hint}")
    params = manifest.get("params") or {"kind": kind}
    if not isinstance(params, Mapping):
        raise RetrievalError(f"{where}: manifest field 'params' is not an object; {hint}")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as error:
        raise RetrievalError(f"{path}: cannot read the FAISS index ({str(error).splitlines()[0]}); {hint}") from None
    base = faiss.downcast_index(index.index) if hasattr(index, "id_map") else None
    expected_types = {"flat": ("IndexFlatIP",), "hnsw": ("IndexHNSWFlat",), "ivfpq": ("IndexIVFPQ", "IndexRefineFlat")}
    if base is None or type(base).__name__ not in expected_types[kind]:
        raise RetrievalError(f"{path}: holds {type(base or index).__name__}, the manifest says '{kind}'; {hint}")
    if index.d != manifest["dim"] or index.ntotal != manifest["count"] or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise RetrievalError(
            f"{path}: index has d={index.d}, {index.ntotal} vectors, metric {index.metric_type}; the manifest says "
            f"d={manifest['dim']}, {manifest['count']} vectors, inner product; {hint}"
        )
    try:
        config = IndexConfig.from_dict(params)
    except RetrievalError as error:
        raise RetrievalError(f"{where}: params: {error}; {hint}") from None
    if config.kind != kind:
        raise RetrievalError(f"{where}: params kind '{config.kind}' differs from kind '{kind}'; {hint}")
    out = VectorIndex(index, config, int(index.d))
    out.build_seconds = float(manifest.get("build_seconds", 0.0))
    return out, manifest


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _short(value: Any) -> Any:
    return value[:12] + "…" if isinstance(value, str) and len(value) > 16 else value
