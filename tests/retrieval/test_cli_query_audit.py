"""Audit of ``kgrec/cli/query.py``: batch files that are pipes, ``--out`` into a pipe, the
``add-items --json`` rows, and the last line of a batch."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.retrieval.test_cli_query import run_cli


def _pipe(text: str) -> Iterator[Path]:
    """A path that reads ``text`` through a pipe, as ``<(printf ...)`` or ``/dev/stdin`` gives one."""
    read, write = os.pipe()
    os.write(write, text.encode())
    os.close(write)
    try:
        yield Path(f"/dev/fd/{read}")
    finally:
        os.close(read)


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="needs /dev/fd")
def test_a_batch_file_that_is_a_pipe_is_read_and_a_folder_is_named_as_one(trained_run: Path, tmp_path: Path, capsys):
    """``--users-file <(cut -f1 test.inter)`` was refused as "users file not found"."""
    from kgrec.retrieval import Recommender

    rec = Recommender.open(trained_run)
    for users in _pipe("u0\n# a comment\nu3\n"):
        code, out, err = run_cli(capsys, "recommend", trained_run, "--users-file", users, "-k", "2", "--no-explain")
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert lines == [{"user": u, "results": [r.to_dict() for r in rec.recommend(u, 2, explain=False)]} for u in ("u0", "u3")]
    for pairs in _pipe("u1,i5\n"):
        code, out, err = run_cli(capsys, "predict", trained_run, "--pairs", pairs, "--no-progress")
        assert code == 0, err
        assert [json.loads(line) for line in out.splitlines()] == [{"user": "u1", **rec.predict("u1", ["i5"])[0].to_dict()}]
    code, _, err = run_cli(capsys, "similar", trained_run, "--items-file", tmp_path)
    assert code == 2 and err == f"kgrec: error: {tmp_path} is a folder: give the items file (one per line)\n"  # was "items file not found"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_out_into_a_pipe_is_written_into_it_not_replaced_by_a_file(trained_run: Path, tmp_path: Path, capsys):
    """``--out /dev/stdout`` into a pipe, ``--out >(gzip > x.gz)``, a FIFO: the atomic write renamed
    a file onto the FIFO (as root, ``--out /dev/null`` would have replaced the device), or failed
    after all the work for ``/dev/stdout``."""
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so that the writer's open does not wait
    try:
        code, out, err = run_cli(capsys, "recommend", trained_run, "--all-users", "-k", "1", "--no-explain",
                                 "--no-progress", "--out", fifo)  # fmt: skip
        assert code == 0 and out == "" and err == f"40 users -> {fifo}\n", err
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the FIFO
        received = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    assert [json.loads(line)["user"] for line in received.splitlines()] == [f"u{u}" for u in range(40)]


def test_add_items_json_names_the_anchor_by_its_raw_id_and_lists_the_batch_once(run_copy: Path, tmp_path: Path,
                                                                                capsys, monkeypatch):  # fmt: skip
    """The anchor was the graph's internal node number (64), which means nothing outside the run's
    graph file; and every row rebuilt the set of added ids (20,000 items: 34 s)."""
    from kgrec.retrieval import Recommender
    from kgrec.retrieval.recommender import AddedIds

    iterations = []

    class Counted(AddedIds):
        def __iter__(self):
            iterations.append(1)
            return super().__iter__()

    add_items = Recommender.add_items
    monkeypatch.setattr(Recommender, "add_items", lambda self, *a, **k: Counted(add_items(self, *a, **k), []))
    items, link, kg = tmp_path / "new.item", tmp_path / "new.link", tmp_path / "new.kg"
    items.write_text("item_id:token\ttitle:token\tclass:token_seq\nm1\tNew 1\tComedy\nm2\tNew 2\tDrama\nm3\tNew 3\tAction\n")
    link.write_text("item_id:token\tentity_id:token\nm1\td0_1\nm2\td1_2\nm3\tne3\n")  # m3: a new entity node
    kg.write_text("head_id:token\trelation_id:token\ttail_id:token\nne3\tfilm.genre\tg2\n")
    code, out, err = run_cli(capsys, "add-items", run_copy, "--items", items, "--link", link, "--kg", kg, "--json")
    assert code == 0, err
    assert [(row["item_id"], row["anchor"]) for row in json.loads(out)] == [("m1", "d0_1"), ("m2", "d1_2"), ("m3", None)]
    assert len(iterations) == 1


def test_the_last_line_of_a_batch_counts_one_in_the_singular(trained_run: Path, tmp_path: Path, capsys):
    users, out_file = tmp_path / "users.txt", tmp_path / "recs.jsonl"
    users.write_text("u2\n")
    code, _, err = run_cli(capsys, "recommend", trained_run, "--users-file", users, "--out", out_file, "--no-progress",
                           "--no-explain")  # fmt: skip
    assert code == 0 and err == f"1 user -> {out_file}\n"  # was "1 users"
