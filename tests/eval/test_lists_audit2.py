"""``kgrec eval-lists`` audited against ``kgrec eval``'s protocol: the config's cut-offs, lists
read from a pipe, a repeated item named."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
import torch

from kgrec.baselines import EASE
from kgrec.cli.main import main
from kgrec.data import SplitConfig, load_dataset
from kgrec.errors import DataError
from kgrec.eval.lists import read_lists
from kgrec.eval.ranking import evaluate_split


@pytest.fixture(scope="module")
def dataset(clustered_dataset: Path):
    return load_dataset(clustered_dataset, SplitConfig(seed=5))


def ease_lists(path: Path, dataset, k: int) -> Path:
    """EASE's top ``k`` unseen items per user, one JSON line each."""
    scores = EASE(reg=50.0).fit(dataset.train, dataset.n_users, dataset.n_items).score(torch.arange(dataset.n_users))
    for part in (dataset.train, dataset.valid):
        scores[torch.as_tensor(part.user), torch.as_tensor(part.item)] = float("-inf")
    top = scores.topk(k, dim=1).indices
    path.write_text("".join(json.dumps({"user": str(dataset.users[u]), "items": [str(dataset.items[i]) for i in row]})
                            + "\n" for u, row in enumerate(top.tolist())), encoding="utf-8")  # fmt: skip
    return path


def test_the_command_ranks_at_the_configs_cut_offs_as_kgrec_eval_does(clustered_dataset: Path, dataset, tmp_path: Path,
                                                                       capsys):  # fmt: skip
    """A config with ``eval.ks: [5, 30]`` gets @5 and @30, equal to evaluating the model directly
    (they were @10 and @20 whatever the config said, so the figures kgrec eval reports for a run
    had no counterpart)."""
    path = ease_lists(tmp_path / "ease.jsonl", dataset, 40)
    split = ["--data", str(clustered_dataset), "--config", "none", "--set", "data.seed=5"]
    assert main(["eval-lists", str(path), *split, "--set", "eval.ks=[5,30]", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["test"]
    ease = EASE(reg=50.0).fit(dataset.train, dataset.n_users, dataset.n_items)
    direct = evaluate_split(ease.score, dataset, "test", ks=(5, 30))
    for key, value in direct.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert "ndcg@10" not in got and "short_lists@30" in got


def test_baselines_beside_other_cut_offs_add_10_and_20(clustered_dataset: Path, tmp_path: Path, capsys):
    path = ease_lists(tmp_path / "ease.jsonl", load_dataset(clustered_dataset, SplitConfig(seed=5)), 40)
    split = ["--data", str(clustered_dataset), "--config", "none", "--set", "data.seed=5"]
    assert main(["eval-lists", str(path), *split, "--set", "eval.ks=[5]", "--baselines", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["test"]
    assert {"ndcg@5", "ndcg@10", "recall@20"} <= set(got)


def test_lists_are_read_from_a_pipe(dataset, tmp_path: Path):
    """``kgrec eval-lists /dev/stdin`` or ``<(convert ...)``: a pipe had been "lists file not found"."""
    text = ease_lists(tmp_path / "ease.jsonl", dataset, 20).read_text(encoding="utf-8")
    fifo = tmp_path / "lists.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w", encoding="utf-8") as handle:
            handle.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        lists = read_lists(fifo, dataset)
    finally:
        if writer.is_alive():  # read_lists refused without opening it: open it so the writer ends
            with open(fifo, encoding="utf-8") as handle:
                handle.read()
        writer.join(5)
    assert len(lists) == dataset.n_users


def test_a_repeated_item_is_named(dataset, tmp_path: Path):
    path = tmp_path / "lists.jsonl"
    path.write_text('{"user": "u0", "items": ["i1", "i2", "i3", "i2"]}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"lists\.jsonl:1: user 'u0': an item appears twice in the list \('i2'\)"):
        read_lists(path, dataset)


def test_what_a_recbole_user_writes_first_is_told_the_format_and_the_ids(tmp_path):
    """A CSV, a NumPy file and internal indices were "not JSON", "byte 1 is not UTF-8" and
    "unknown item", none of them saying what the file should hold."""
    from tests.conftest import write_atomic

    folder = write_atomic(tmp_path, "toy", {"inter": "user_id:token|item_id:token\nu1|a\nu1|b\nu2|a\nu2|c"})
    ds = load_dataset(folder)
    shown = 'expected JSON lines, one {"user": ID, "items": [ID, ...]} per user, best first'
    csv = tmp_path / "recs.csv"
    csv.write_text("user_id,item_id,rank\nu1,a,1\n")
    with pytest.raises(DataError, match=re.escape(f"recs.csv:1: column 1: not JSON (Expecting value); {shown}")):
        read_lists(csv, ds)
    npy = tmp_path / "scores.npy"
    npy.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'}")
    with pytest.raises(DataError, match=re.escape("(a NumPy .npy file: write one JSON line per user instead)")):
        read_lists(npy, ds)
    internal = tmp_path / "internal.jsonl"
    internal.write_text('{"user": "u1", "items": ["1", "2"]}\n')
    with pytest.raises(DataError, match=r"unknown item '1': .*\(a tool's internal indices need mapping back: RecBole's "):
        read_lists(internal, ds)
