"""Audit of the atomic-write rule: a write reached through a link, a rewritten private file, a
checkpoint saved while the temporary folder is on another disk, and damaged saved arrays."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
import torch

from kgrec.errors import GraphError
from kgrec.utils.io import atomic_dir, restore_interrupted_dir, write_json


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_folder_reached_through_a_symlink_is_replaced_behind_the_link(tmp_path):
    real = tmp_path / "disk" / "graph"
    real.mkdir(parents=True)
    (real / "a.json").write_text("0")
    link = tmp_path / "graph"
    link.symlink_to(real, target_is_directory=True)
    for version in ("1", "2"):  # the second save failed: NotADirectoryError renaming onto the stale .graph.old link
        with atomic_dir(link) as tmp:
            (tmp / "a.json").write_text(version)
        assert link.is_symlink() and (real / "a.json").read_text() == version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "graph"]  # no .graph.old left beside the link
    assert sorted(p.name for p in real.parent.iterdir()) == ["graph"]
    os.replace(real, real.with_name(".graph.old"))  # a crash between atomic_dir's two renames
    restore_interrupted_dir(link)  # as a reader calls it, with the path it was given
    assert (link / "a.json").read_text() == "2"


def test_a_file_reached_through_a_symlink_is_written_behind_the_link(tmp_path):
    real = tmp_path / "elsewhere" / "results.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "results.json"
    link.symlink_to(real)
    write_json(link, {"a": 1})  # a plain open(link, "w") writes through the link
    assert link.is_symlink() and '"a": 1' in real.read_text()
    assert sorted(p.name for p in real.parent.iterdir()) == ["results.json"]


def test_rewriting_a_file_or_folder_keeps_its_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        private = tmp_path / "private.json"
        private.write_text("{}")
        private.chmod(0o600)
        write_json(private, {"a": 1})
        assert _mode(private) == 0o600  # was made 0644: readable by everyone after the next save
        write_json(tmp_path / "new.json", {})
        assert _mode(tmp_path / "new.json") == 0o644  # a new file: as a plain write makes it, not mkstemp's 0600
        folder = tmp_path / "index"
        with atomic_dir(folder) as tmp:
            (tmp / "x").write_text("1")
        assert _mode(folder) == 0o755
        folder.chmod(0o700)
        with atomic_dir(folder) as tmp:
            (tmp / "x").write_text("2")
        assert _mode(folder) == 0o700
    finally:
        os.umask(umask)


def test_a_checkpoint_cut_short_while_tmp_is_another_disk_leaves_the_previous_one(clustered_dataset, tmp_path, monkeypatch):
    """Lightning staged each checkpoint in the system temporary folder and moved it into place:
    with /tmp on another file system the move is a copy onto ``last.ckpt`` itself, so a crash
    mid-copy left a truncated checkpoint and the interrupted run could not resume."""
    from kgrec.train import train
    from tests.conftest import tiny_config

    other_disk = tmp_path / "other-disk"
    other_disk.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(other_disk))
    real_rename, real_copyfile = os.rename, shutil.copyfile

    def rename(src, dst, *args, **kwargs):
        if str(src).startswith(str(other_disk)):
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src), None, str(dst))
        return real_rename(src, dst, *args, **kwargs)

    def copyfile(src, dst, *args, **kwargs):  # the copy onto an earlier checkpoint is killed halfway
        if os.path.exists(dst):
            data = Path(src).read_bytes()
            with open(dst, "wb") as handle:
                handle.write(data[: len(data) // 2])
            raise RuntimeError("killed mid-write")
        return real_copyfile(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(shutil, "copyfile", copyfile)
    torch.set_num_threads(1)
    config = tiny_config(clustered_dataset, "train.max_epochs=2")
    try:
        train(config, tmp_path / "run")
    except RuntimeError as error:
        assert "killed mid-write" in str(error)
    saved = sorted((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    assert [p.name for p in saved] == ["best.ckpt", "last.ckpt"]
    for checkpoint in saved:  # each readable: the resume starts from last.ckpt and ends reading best.ckpt
        assert torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"] >= 0, checkpoint.name


@pytest.fixture
def graph_folder(toy_dataset, tmp_path):
    from kgrec.data import load_dataset
    from kgrec.graph import build_graph

    return build_graph(load_dataset(toy_dataset)).save(tmp_path / "graph")


def _cut(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_graph_file_is_a_graph_error_naming_it(graph_folder):
    from kgrec.graph import KnowledgeGraph

    _cut(graph_folder / "graph.npz")
    with pytest.raises(GraphError, match="graph.npz"):  # was zipfile.BadZipFile, a traceback
        KnowledgeGraph.load(graph_folder)


def test_truncated_held_out_triples_are_a_graph_error_naming_the_file(tmp_path):
    import numpy as np

    from kgrec.graph.holdout import HeldOutTriples

    path = tmp_path / "kg_heldout.npz"
    rows = np.arange(3000, dtype=np.int64).reshape(-1, 3)
    HeldOutTriples(rows, rows, rows).save(path)
    _cut(path)
    with pytest.raises(GraphError, match="kg_heldout.npz"):
        HeldOutTriples.load(path)
    np.savez(path, valid=rows)  # another .npz, without 'test' and 'known'
    with pytest.raises(GraphError, match="kg_heldout.npz"):
        HeldOutTriples.load(path)


def test_a_damaged_model_file_is_a_clear_error_naming_it(clustered_dataset, tmp_path):
    from kgrec.errors import KgrecError
    from kgrec.train import train
    from kgrec.train.saved import load_run
    from tests.conftest import tiny_config

    torch.set_num_threads(1)
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), tmp_path / "run")
    _cut(tmp_path / "run" / "model.safetensors")
    with pytest.raises(KgrecError, match=r"model\.safetensors"):  # was safetensors' own error, a traceback
        _ = load_run(tmp_path / "run").model


def test_damaged_added_item_vectors_are_a_retrieval_error_naming_the_file(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    from kgrec.errors import RetrievalError
    from kgrec.retrieval.catalog import _read_files

    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "catalog.json").write_text("{}")
    save_file({"vectors": np.ones((50, 8), np.float32)}, str(folder / "added.safetensors"))
    _cut(folder / "added.safetensors")
    with pytest.raises(RetrievalError, match=r"added\.safetensors"):  # was safetensors' own error, a traceback
        _read_files(folder)


def test_training_curves_skip_a_log_row_cut_short_by_a_crash(tmp_path):
    """Lightning appends to ``metrics.csv`` in place (a log): a crash mid-row left ``1e-`` there,
    and the resumed run then failed at its very end, plotting the curves, before its manifest."""
    from kgrec.train.plots import read_metrics_csv

    part = tmp_path / "logs" / "part-0"
    part.mkdir(parents=True)
    (part / "metrics.csv").write_text("epoch,step,train/loss\n0,9,0.5\n1,19,1e-")
    assert read_metrics_csv(tmp_path / "logs") == {"train/loss": [(0, 0.5)]}
    # a cut that still parses is dropped too: a last line without its newline, a row short of fields
    (part / "metrics.csv").write_text("epoch,step,train/loss,valid/ndcg@10\n0,9,0.5,\n1,19,0.4,0.2\n2,29,0.71")
    assert read_metrics_csv(tmp_path / "logs") == {"train/loss": [(0, 0.5), (1, 0.4)], "valid/ndcg@10": [(1, 0.2)]}
    (part / "metrics.csv").write_text("epoch,step,train/loss,valid/ndcg@10\n0,9,0.5,0.1\n1,19,0.4\n")
    assert read_metrics_csv(tmp_path / "logs") == {"train/loss": [(0, 0.5)], "valid/ndcg@10": [(0, 0.1)]}
