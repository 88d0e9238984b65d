"""A run's catalog and index kept in step across processes: a save that lands while another
object reads the catalog, a refresh whose index cannot be opened, a change saved while an index
is built (an audit's findings). Each "process" is a Recommender of its own on the same run."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval import Recommender
from kgrec.retrieval import indexed_catalog as module
from kgrec.retrieval.catalog import Catalog


def active(rec: Recommender) -> set[str]:
    return {rec.catalog.tokens[i] for i in rec.catalog.active_ids()}


def test_a_change_saved_while_a_refresh_reads_the_catalog_is_taken_up_at_the_next_refresh(run_copy: Path, monkeypatch):
    """refresh() read the catalog, then stamped it with the file as it was after the read: a
    save that landed in between was taken for the one read, and never taken up."""
    server, command = Recommender.open(run_copy), Recommender.open(run_copy)
    command.remove_items("i5")
    real, fired = Catalog.load, []

    def load(*args, **kwargs):
        catalog = real(*args, **kwargs)
        if not fired:
            fired.append(True)
            command.remove_items("i9")  # another process saves just after the server's read
        return catalog

    monkeypatch.setattr(Catalog, "load", staticmethod(load))
    assert server.refresh() and fired and "i5" not in active(server) and "i9" in active(server)
    monkeypatch.undo()
    assert server.refresh()  # it answered False: "nothing changed", i9 served for ever
    assert not {"i5", "i9"} & active(server) and server.catalog.n_active == server.index.count == 58
    assert not server.refresh()


def test_a_refresh_that_cannot_open_the_index_keeps_catalog_and_index_in_step_and_tries_again(run_copy: Path, monkeypatch):
    """The new catalog was taken (and its stamp) before the index was opened: when that raised,
    the server answered from the new catalog and the old index (the removed item still in it),
    and the next refresh said nothing had changed, so /health went back to 200."""
    server, command = Recommender.open(run_copy), Recommender.open(run_copy)
    command.remove_items("i5")

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(run_copy / "index" / "manifest.json"))

    monkeypatch.setattr(module, "load_index", unreadable)
    with pytest.raises(PermissionError):
        server.refresh()
    assert server.catalog.n_active == server.index.count == 60 and "i5" in active(server)  # the state before, whole
    with pytest.raises(PermissionError):
        server.refresh()  # still not taken up: it says so again (it returned False)
    monkeypatch.undo()
    assert server.refresh() and server.catalog.n_active == server.index.count == 59
    assert "i5" not in {r.item_id for r in server.similar("i1", k=58, explain=False)}


def test_a_change_saved_during_an_index_build_is_not_undone_by_the_saved_index(run_copy: Path, monkeypatch):
    """``kgrec index build`` saved the index of the catalog it had read, without the change lock:
    a removal saved meanwhile was left out of the saved index, and every later open of the run
    refused it ("index does not match this run")."""
    builder, command = Recommender.open(run_copy), Recommender.open(run_copy)
    real, removing = module.VectorIndex.build, []

    def build(*args, **kwargs):
        if not removing:  # another process removes an item while the index is built
            removing.append(threading.Thread(target=command.remove_items, args=("i5",)))
            removing[0].start()
            removing[0].join(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(module.VectorIndex, "build", staticmethod(build))
    builder.build_index()
    assert removing[0].is_alive()  # the removal waits for the build to be saved ...
    removing[0].join(10)
    monkeypatch.undo()
    opened = Recommender.open(run_copy, build_missing=False)  # ... and builds on it
    assert opened.index.count == opened.catalog.n_active == 59 and "i5" not in active(opened)
    # a build on an object that read the catalog before another process's change builds on that change
    command.remove_items("i9")
    index = builder.build_index()
    assert index.count == builder.catalog.n_active == 58 and "i9" not in active(builder)
    assert Recommender.open(run_copy, build_missing=False).index.count == 58


def test_an_index_rebuilt_within_a_change_does_not_wait_on_its_own_lock(run_copy: Path):
    """A removal from an HNSW index rebuilds it inside the change (under its lock): the rebuild
    must not ask for the lock again (a second flock of the same process waits for ever)."""
    rec = Recommender.open(run_copy, index="hnsw", rebuild=True)
    worker = threading.Thread(target=rec.remove_items, args=("i5",), daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive()
    assert rec.index.kind == "hnsw" and rec.index.count == 59
    with pytest.raises(RetrievalError, match="was removed"):
        Recommender.open(run_copy, build_missing=False).similar("i5")
