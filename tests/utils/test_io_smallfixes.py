"""Atomic writes to a target whose name is near the file system's 255-byte limit."""

from __future__ import annotations

import os

import numpy as np

from kgrec.utils.io import atomic_dir, atomic_path, restore_interrupted_dir, write_json


def _longest_name(folder, tail: str) -> str:
    """A legal name ending in ``tail`` as long as ``folder``'s file system allows (255 bytes on most)."""
    limit = min(os.pathconf(folder, "PC_NAME_MAX"), 255)
    return "é" * ((limit - len(tail)) // 2) + "x" * ((limit - len(tail)) % 2) + tail  # 2-byte characters too


def test_a_target_named_at_the_length_limit_is_written_atomically(tmp_path):
    name = _longest_name(tmp_path, ".json")
    (tmp_path / name).write_text("{}")  # a legal name: a plain write takes it
    write_json(tmp_path / name, {"a": 1})  # was: OSError, file name too long (the temporary's)
    assert (tmp_path / name).read_text() == '{\n  "a": 1\n}\n'
    with atomic_path(tmp_path / name, suffix=".npz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.name.endswith(".tmp.npz")
        assert len(tmp.name.encode()) <= 255
        np.savez(tmp, x=np.arange(3))  # the suffix is kept: savez does not add another .npz
    assert np.load(tmp_path / name)["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


def test_a_folder_named_at_the_length_limit_is_replaced_and_restored(tmp_path):
    name = _longest_name(tmp_path, "")
    for text in ("1", "2"):
        with atomic_dir(tmp_path / name) as tmp:
            (tmp / "a.json").write_text(text)
    assert (tmp_path / name / "a.json").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    # a crash between the two renames leaves the previous folder aside; the reader puts it back
    from kgrec.utils.io import _old_path

    os.replace(tmp_path / name, _old_path(tmp_path / name))
    restore_interrupted_dir(tmp_path / name)
    assert (tmp_path / name / "a.json").read_text() == "2"


def test_short_names_keep_their_temporary_and_old_names(tmp_path):
    from kgrec.utils.io import _old_path

    with atomic_path(tmp_path / "m.json") as tmp:
        assert tmp.name.startswith(".m.json.") and tmp.name.endswith(".tmp")
        tmp.write_text("x")
    assert _old_path(tmp_path / "catalog") == tmp_path / ".catalog.old"  # what run folders' cleanup names
