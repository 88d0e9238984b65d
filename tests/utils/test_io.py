"""Atomic writes: a failed block leaves the previous version, a crash mid-swap is undone on read."""

from __future__ import annotations

import os

import pytest

from kgrec.utils.io import atomic_dir, replace_refusal, restore_interrupted_dir, write_json


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


def test_writes_reach_the_disk_before_the_rename_makes_them_visible(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(("replace", str(b))) or real_replace(a, b))
    write_json(tmp_path / "m.json", {"a": 1})
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"] and events[0][1].endswith(".tmp") and events[2][1] == str(tmp_path)
    events.clear()
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "x.bin").write_bytes(b"x")
    assert [kind for kind, _ in events] == ["fsync", "fsync", "replace", "fsync"]
    assert events[0][1].endswith("x.bin") and events[-1][1] == str(tmp_path)


def test_a_reader_waits_for_a_writer_between_its_two_renames(tmp_path):
    import threading

    from kgrec.utils.io import swap_lock

    target = tmp_path / "catalog"
    target.mkdir()
    (target / "v").write_text("old")
    new = tmp_path / "new"
    new.mkdir()
    (new / "v").write_text("new")
    with swap_lock(target):  # a writer mid-swap: the previous version already moved aside
        os.replace(target, tmp_path / ".catalog.old")
        reader = threading.Thread(target=restore_interrupted_dir, args=(target,))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive()  # waits instead of putting the old version back
        os.replace(new, target)
    reader.join(5)
    assert not reader.is_alive() and (target / "v").read_text() == "new"  # the writer's version stays


def test_replace_refusal_names_what_a_whole_folder_replace_would_delete(tmp_path):
    ours = {"a.inter", "a.item"}.__contains__
    assert replace_refusal(tmp_path / "new", ours, "the import") is None  # missing
    (tmp_path / "empty").mkdir()
    assert replace_refusal(tmp_path / "empty", ours, "the import") is None
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "a.inter").write_text("")
    assert replace_refusal(folder, ours, "the import") is None  # only files the writer writes
    for name in ("ratings.csv", ".git", "b", "c", "d"):
        (folder / name).write_text("")
    assert replace_refusal(folder, ours, "the import") == (
        "holds '.git', 'b', 'c' and 2 more, which the import would delete (it replaces the folder as a whole)"
    )
    assert replace_refusal(folder / "a.inter", ours, "the import") == "is a file; the import writes a folder"


def test_a_guarded_atomic_dir_checks_again_just_before_the_swap(tmp_path):
    """A file put into the folder while the new version was being written is not deleted."""
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "a.inter").write_text("old")

    def guard() -> None:
        if refusal := replace_refusal(folder, {"a.inter"}.__contains__, "the import"):
            raise ValueError(refusal)

    with pytest.raises(ValueError, match="holds 'notes.txt', which the import would delete"), atomic_dir(folder, guard) as tmp:
        (tmp / "a.inter").write_text("new")
        (folder / "notes.txt").write_text("mine")  # meanwhile, another program writes here
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "a.inter").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temporary folder left


def test_a_figure_where_no_file_can_be_made_is_one_error(tmp_path):
    """They were FileExistsError and FileNotFoundError tracebacks (`graph stats --plot`, `compare --plot` ...)."""
    from matplotlib.figure import Figure

    from kgrec.errors import KgrecError
    from kgrec.utils.io import write_figure

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(KgrecError, match=r"a-file/x.png: cannot write the image there \(File exists\)"):
        write_figure(Figure(), tmp_path / "a-file" / "x.png")
    if os.path.isdir("/proc/self"):
        with pytest.raises(KgrecError, match=r"^/proc/x.png: cannot write the image there \(No such file or directory\)$"):
            write_figure(Figure(), "/proc/x.png")
    assert write_figure(Figure(), tmp_path / "new" / "x.png").is_file()  # a missing folder is made
