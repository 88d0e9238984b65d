"""Output the environment refuses (``--out`` a folder or an impossible place, a full disk, ``>
/dev/full``): one line on stderr and status 2, never a traceback."""

from __future__ import annotations

import contextlib
import errno
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.retrieval.test_cli_query import run_cli


def test_an_out_folder_is_refused_before_any_work(trained_run: Path, tmp_path: Path, capsys):
    """It was an IsADirectoryError traceback, after every user's recommendations were made."""
    users = tmp_path / "users.txt"
    users.write_text("u0\nnobody\n")  # the unknown user would stop it first, had the run been opened
    code, out, err = run_cli(capsys, "recommend", trained_run, "--users-file", users, "--out", tmp_path)
    assert code == 2 and out == ""
    assert err == f"kgrec: error: --out {tmp_path} is a folder; give the path of a file to write, e.g. {tmp_path / 'results.jsonl'}\n"
    code, _, err = run_cli(capsys, "similar", trained_run, "--all-items", "--out", tmp_path, "--no-progress")
    assert code == 2 and err.count("\n") == 1 and "is a folder" in err
    code, _, err = run_cli(capsys, "similar", trained_run, "--all-items", "--out", users / "x.jsonl", "--no-progress")
    assert code == 2 and err == f"kgrec: error: --out {users / 'x.jsonl'}: {users} is a file, not a folder\n"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_an_out_where_no_file_can_be_made_is_refused(trained_run: Path, capsys):
    """/proc takes no new file: it was a FileNotFoundError traceback."""
    code, _, err = run_cli(capsys, "recommend", trained_run, "--all-users", "--out", "/proc/x.jsonl")
    assert code == 2 and err == "kgrec: error: --out /proc/x.jsonl: cannot create a file in /proc (No such file or directory)\n"


class _FullDisk:
    """A file handle on a disk that is full: every write fails with ENOSPC."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_disk_that_fills_up_while_writing_out(trained_run: Path, tmp_path: Path, capsys, monkeypatch):
    @contextlib.contextmanager
    def full(path: Any, mode: str = "w", **kwargs: Any) -> Iterator[_FullDisk]:
        yield _FullDisk()

    assert run_cli(capsys, "recommend", trained_run, "--user", "u0")[0] == 0  # the run's index is built and saved
    monkeypatch.setattr("kgrec.utils.io.atomic_open", full)
    out = tmp_path / "recs.jsonl"
    code, _, err = run_cli(capsys, "recommend", trained_run, "--all-users", "--out", out, "--no-progress")
    assert code == 2 and err == f"kgrec: error: --out {out}: cannot write it (No space left on device); nothing was written\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("batch", [False, True])
def test_standard_output_on_a_full_device(trained_run: Path, batch: bool):
    """``kgrec recommend ... > /dev/full``: an OSError (ENOSPC) traceback and status 1."""
    who = ["--all-users", "--no-progress"] if batch else ["--user", "u0", "-k", "2"]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "kgrec", "recommend", str(trained_run), *who], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stderr == "kgrec: error: cannot write: No space left on device\n"
