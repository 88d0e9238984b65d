"""A run's catalog and its FAISS index kept in step: the index opened, built and saved
(``RUN_DIR/index/``), catalog changes saved and applied to the index, and the changes another
process saved taken up.

A predict-only recommender's catalog (a run trained without the retrieval tower, or one opened
with ``predict_only=True``) has no index and never opens or builds one (:attr:`IndexedCatalog.no_index`).

Every save is atomic. A change is made on the latest saved catalog under an exclusive lock
(:meth:`IndexedCatalog.changing`), and so is an index build that is saved; should its index update
fail, the index is dropped and :attr:`IndexedCatalog.error` says why (queries are refused until
``kgrec index build`` repairs it).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.errors import IndexOutOfDateError, PredictOnlyError, RetrievalError
from kgrec.retrieval.catalog import CATALOG_DIR, Catalog
from kgrec.retrieval.index import IndexConfig, VectorIndex, load_index
from kgrec.utils.io import exclusive_lock, restore_interrupted_dir

if TYPE_CHECKING:
    from kgrec.train.saved import LoadedRun

INDEX_DIR = "index"

Stamp = tuple[int, int, int]


def catalog_stamp(run_dir: Path) -> Stamp | None:
    """Inode, modification time and size of ``RUN_DIR/catalog/catalog.json`` (None: no changes
    saved): every save swaps in a new file, so a different stamp means another save."""
    return file_stamp(run_dir / CATALOG_DIR / "catalog.json")


def file_stamp(path: Path) -> Stamp | None:
    """Inode, modification time and size of ``path``; ``None`` when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class IndexedCatalog:
    """The ``catalog`` a run answers from and its ``index`` (``None`` until opened, after a
    failed update: :attr:`error`, or always when :attr:`no_index` says why)."""

    def __init__(self, run: LoadedRun, catalog: Catalog, vectors_sha256: str, no_index: str | None = None) -> None:
        self.run = run
        self.path = Path(run.path)
        self.catalog = catalog
        self.vectors_sha256 = vectors_sha256
        self.index: VectorIndex | None = None
        self.error: str | None = None  # why ``index`` is None after a failed catalog change
        self.no_index = no_index  # why there is no index, ever (predict only); None: there is one
        self._index_tried: Stamp | None = None  # the saved index manifest found stale since
        self._catalog_stamp = catalog_stamp(self.path)  # the saved catalog this object holds
        self._locked_by: int | None = None  # the thread that holds the change lock (changing(), build_index())

    # ------------------------------------------------------------------ the index
    @property
    def index_dir(self) -> Path:
        """``RUN_DIR/index/``: the saved FAISS index and its manifest."""
        return self.path / INDEX_DIR

    def expected(self, catalog: Catalog | None = None) -> dict[str, Any]:
        """What the saved index's manifest must say to match ``catalog`` (default: the one held)
        and the run's vectors."""
        catalog = self.catalog if catalog is None else catalog
        return {
            "dim": catalog.dim,
            "count": catalog.n_active,
            **catalog.checksums(),
            "run": {"vectors_sha256": self.vectors_sha256},
        }

    def open_index(self, config: IndexConfig | None, build_missing: bool) -> VectorIndex:
        """The saved index (:class:`RetrievalError` when it does not match), or a new one built
        with ``config`` and saved when none is saved and ``build_missing``."""
        self._check_indexable()
        restore_interrupted_dir(self.index_dir)  # a crash mid-save: the saved index, not a new default one
        if not (self.index_dir / "manifest.json").is_file():
            if not build_missing:
                raise RetrievalError(f"{self.path}: no index yet; build one with `kgrec index build {self.path}`")
            return self.build_index(config)
        index, _ = load_index(
            self.index_dir, self.expected(), hint=f"rebuild it with `kgrec index build {self.path}`"
        )
        return index

    def build_index(self, config: IndexConfig | None = None, save: bool = True) -> VectorIndex:
        """(Re)build the index over the active catalog and save it to ``RUN_DIR/index`` (atomically).

        A build that is saved holds the change lock (:meth:`changing`) and builds on the catalog
        saved now: a change another process saved since this object read the catalog (or during
        the build) is not undone by an index that lacks it, which every open would refuse."""
        self._check_indexable()
        with self._change_lock() if save else contextlib.nullcontext():
            catalog, stamp = self.catalog, self._catalog_stamp
            if save and (latest := catalog_stamp(self.path)) != stamp:
                catalog, stamp = self._load_catalog(), latest
            ids = catalog.active_ids()
            if len(ids) == 0:
                raise RetrievalError(f"{self.path}: every item was removed; nothing to index")
            index = VectorIndex.build(catalog.vectors[ids], ids, config)
            if save:
                self.save_index(index, catalog)
        self.catalog, self._catalog_stamp = catalog, stamp
        self.index = index
        self.error = None
        return index

    def require_index(self) -> VectorIndex:
        """The index; :class:`IndexOutOfDateError` after a failed update, :class:`PredictOnlyError`
        without one (:attr:`no_index`)."""
        self._check_indexable()
        if self.index is None:
            if self.error is not None:
                raise IndexOutOfDateError(self.error)
            raise RetrievalError("no index loaded")
        return self.index

    def _check_indexable(self) -> None:
        if self.no_index is not None:
            raise PredictOnlyError(self.no_index)

    def save_index(self, index: VectorIndex, catalog: Catalog | None = None) -> None:
        """Save ``index`` (built over ``catalog``, default: the one held) to ``RUN_DIR/index``
        with its manifest and ``ids.json``."""
        catalog = self.catalog if catalog is None else catalog
        expected = self.expected(catalog)
        extra = {
            "ids_sha256": expected["ids_sha256"],
            "run": {
                "path": str(self.path.resolve()),
                "vectors_sha256": self.vectors_sha256,
                "dataset": self.run.dataset.name,
                "split": self.run.dataset.split,
                "added_items": len(catalog.added),
                "removed_items": len(catalog.removed_tokens()),
            },
        }
        ids = catalog.active_ids()
        # ids.json: FAISS id -> raw item token, for readers of the index without kgrec
        files = {"ids.json": {"ids": ids.tolist(), "item_ids": [catalog.tokens[i] for i in ids]}}
        index.save(self.index_dir, expected["vectors_sha256"], extra, files)

    # ------------------------------------------------------------------ changes
    def refresh(self) -> bool:
        """Take up the catalog (and index) another process saved since this object read or wrote
        the run's catalog; after a failed index update, also an index ``kgrec index build`` saved
        since (:meth:`take_up_rebuilt_index`). Returns whether it took up anything."""
        stamp = catalog_stamp(self.path)  # before the read: a save meanwhile is taken up at the next refresh
        if stamp == self._catalog_stamp:
            return self.error is not None and self.take_up_rebuilt_index()
        catalog = self._load_catalog()
        before = self.catalog, self._catalog_stamp
        self.catalog, self._catalog_stamp = catalog, stamp
        if self.no_index is not None:  # the catalog alone
            return True
        config = self.index.config if self.index is not None else None
        try:
            try:
                index = self.open_index(config, build_missing=True)
            except RetrievalError:  # the other process is between its catalog and its index saves
                index = self.build_index(config, save=False)
        except BaseException:  # the catalog and the index held stay in step; the next refresh tries again
            self.catalog, self._catalog_stamp = before
            raise
        self.index = index
        self.error = None
        return True

    def _load_catalog(self) -> Catalog:
        """The catalog saved in the run now."""
        base = self.catalog
        return Catalog.load(self.path, self.run.dataset, base.vectors[: base.n_base], base.base_sha256,
                            base.titles[: base.n_base], base.text_dim, base.fused_dim)  # fmt: skip

    def take_up_rebuilt_index(self) -> bool:
        """After a failed index update, the index ``kgrec index build`` saved since, when it
        matches the catalog (queries answered 503 until a restart, though the repair was done).
        Each saved version is read once: a stale one is remembered by its manifest's stamp."""
        stamp = file_stamp(self.index_dir / "manifest.json")
        if stamp is None or stamp == self._index_tried:
            return False
        self._index_tried = stamp
        try:
            self.index = self.open_index(None, build_missing=False)
        except RetrievalError:  # the index saved before the failed change: still stale
            return False
        self.error = None
        return True

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """A catalog change from start to save, one process at a time: on the latest catalog
        (:meth:`refresh`), under an exclusive lock on the run's ``vectors.safetensors`` (its
        ``model.safetensors`` without the retrieval tower; no lock file is left), so that two processes' changes
        never interleave and the one saved last never undoes the other."""
        with self._change_lock():
            self.refresh()
            yield

    @contextlib.contextmanager
    def _change_lock(self) -> Iterator[None]:
        """:meth:`changing`'s lock; held already when this thread holds it (an index rebuilt
        within a change), where a second ``flock`` would wait on the first for ever."""
        if self._locked_by == threading.get_ident():
            yield
            return
        lock = self.path / "vectors.safetensors"
        if not lock.is_file():  # a run without the retrieval tower
            lock = self.path / "model.safetensors"
        with exclusive_lock(lock):
            self._locked_by = threading.get_ident()
            try:
                yield
            finally:
                self._locked_by = None

    def commit(self, catalog: Catalog, added: np.ndarray | None = None, removed: np.ndarray | None = None) -> None:
        """Save ``catalog`` (``added`` and ``removed`` positions since the current one), then
        update (or rebuild) and save the index; both writes are atomic.

        Should the index update fail, the index is dropped (it no longer matches the catalog),
        :attr:`error` says why, the next open reports the mismatch, and ``kgrec index build``
        repairs it. A catalog without retrieval vectors (a run without the retrieval tower) has
        no index: it is only saved."""
        if catalog.dim == 0 and self.catalog.dim == 0:
            catalog.save(self.path)
            self.adopt(catalog)
            return
        index = self.require_index()
        catalog.save(self.path)
        self.adopt(catalog)
        try:
            updated = True
            if added is not None and len(added):
                index.add(catalog.vectors[added], added)
            if removed is not None and len(removed):
                updated = index.remove(removed)
            if updated:
                self.save_index(index)
            else:
                self.build_index(IndexConfig.from_dict(index.config.to_dict()))
        except Exception as error:
            self.index = None
            self.error = (
                f"{self.path}: the catalog was changed but updating its index failed ({error}); "
                f"rebuild it with `kgrec index build {self.path}`"
            )
            raise IndexOutOfDateError(self.error) from error

    def adopt(self, catalog: Catalog) -> None:
        """Answer from ``catalog``, the one saved in the run now (what was built from the previous
        one is rebuilt from it at its next use)."""
        self.catalog = catalog
        self._catalog_stamp = catalog_stamp(self.path)
