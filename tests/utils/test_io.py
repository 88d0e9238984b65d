"""Atomic writes: a failed block leaves the previous version, a crash mid-swap is undone on read."""

from __future__ import annotations

import os

import pytest

from kgrec.utils.io import atomic_dir, restore_interrupted_dir


def test_atomic_dir_replaces_the_folder_whole_or_not_at_all(tmp_path):
    target = tmp_path / "catalog"
    with atomic_dir(target) as tmp:
        (tmp / "a.json").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.json").write_text("2")
        raise RuntimeError("bad input halfway")
    assert (target / "a.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog"]  # no temporary left behind


def test_a_crash_between_the_two_renames_is_undone_on_read(tmp_path):
    target = tmp_path / "catalog"
    with atomic_dir(target) as tmp:
        (tmp / "a.json").write_text("1")
    os.replace(target, tmp_path / ".catalog.old")  # atomic_dir's first rename, then the crash
    restore_interrupted_dir(target)
    assert (target / "a.json").read_text() == "1"
    restore_interrupted_dir(target)  # nothing to do: the folder is there
    assert (target / "a.json").read_text() == "1"
    restore_interrupted_dir(tmp_path / "never-written")
    assert not (tmp_path / "never-written").exists()
