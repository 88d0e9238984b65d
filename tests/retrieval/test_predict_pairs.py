"""Scoring many (user, item) pairs at once: ``Recommender.predict_pairs`` and ``kgrec predict
--pairs FILE``, the batch form of ``predict`` (a file of candidate or test pairs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.cli.main import main
from kgrec.errors import NotFoundError, RetrievalError


def _pairs(rec, n: int) -> tuple[list[str], list[str]]:
    """``n`` training pairs spread over the run's dataset, as raw ids (several users)."""
    data = rec.run.dataset
    rows = np.linspace(0, len(data.train) - 1, n).astype(int)
    users = [str(data.users[u]) for u in data.train.user[rows]]
    items = [rec.catalog.tokens[i] for i in data.train.item[rows]]
    assert len(set(users)) > 1
    return users, items


def test_pairs_get_what_predict_gives_each_user_and_what_the_towers_give(trained_run: Path, monkeypatch):
    from kgrec.retrieval import Recommender, predict

    rec = Recommender.open(trained_run, predict_only=True)
    users, items = _pairs(rec, 40)
    monkeypatch.setattr(predict, "PAIR_BATCH", 7)  # several passes of the towers, joined in order
    found = rec.predict_pairs(users, items)
    assert [p.item_id for p in found] == items
    for user, item, pair in zip(users, items, found, strict=True):
        (alone,) = rec.predict(user, [item])
        np.testing.assert_allclose([pair.rating, pair.like, pair.score], [alone.rating, alone.like, alone.score],
                                   rtol=1e-5)  # fmt: skip
    model, u = rec.run.model, torch.as_tensor([rec.user_index(x) for x in users])
    i = torch.as_tensor([rec.catalog.position(x) for x in items])
    with torch.no_grad():
        np.testing.assert_allclose([p.rating for p in found], model.predict_rating(u, i).numpy(), rtol=1e-5)
        np.testing.assert_allclose([p.like for p in found], model.predict_like(u, i).numpy(), rtol=1e-5)
    scores = (rec.user_vectors[u.numpy()] * rec.catalog.vectors[i.numpy()]).sum(1)
    np.testing.assert_allclose([p.score for p in found], scores, rtol=1e-5)


def test_pairs_are_checked_before_any_work(trained_run: Path):
    from kgrec.retrieval import Recommender

    rec = Recommender.open(trained_run, predict_only=True)
    users, items = _pairs(rec, 3)
    with pytest.raises(RetrievalError, match="3 users and 2 items: expected one user per item"):
        rec.predict_pairs(users, items[:2])
    with pytest.raises(NotFoundError, match="nobody"):
        rec.predict_pairs([*users, "nobody"], [*items, items[0]])
    assert rec.predict_pairs([], []) == []


def test_the_cli_scores_a_pairs_file_in_order_skipping_its_header(trained_run: Path, tmp_path: Path, capsys):
    from kgrec.retrieval import Recommender

    rec = Recommender.open(trained_run, predict_only=True)
    users, items = _pairs(rec, 5)
    lines = ["user_id:token\titem_id:token\trating:float", *(f"{u}\t{i}\t4" for u, i in zip(users, items, strict=True))]
    pairs = tmp_path / "test.inter"
    pairs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.jsonl"
    assert main(["predict", str(trained_run), "--pairs", str(pairs), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"{pairs}:1: 'user_id:token\titem_id:token\trating:float' read as a header" in err and "5 pairs -> " in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = rec.predict_pairs(users, items)
    assert rows == [{"user": u, **p.to_dict()} for u, p in zip(users, expected, strict=True)]
    csv = tmp_path / "pairs.csv"  # comma-separated, no header: every line is a pair
    csv.write_text("".join(f"{u},{i}\n" for u, i in zip(users, items, strict=True)))
    assert main(["predict", str(trained_run), "--pairs", str(csv), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()] == rows and "header" not in captured.err


def test_the_cli_names_the_line_of_an_unknown_id_and_refuses_mixed_modes(trained_run: Path, tmp_path: Path, capsys):
    from kgrec.retrieval import Recommender

    rec = Recommender.open(trained_run, predict_only=True)
    users, items = _pairs(rec, 2)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{users[0]}\t{items[0]}\n# a comment\n{users[1]}\tno-such-item\n{users[0]}\n")
    assert main(["predict", str(trained_run), "--pairs", str(pairs)]) == 2
    assert f"{pairs}:3: unknown item 'no-such-item'" in capsys.readouterr().err
    pairs.write_text(f"{users[0]}\t{items[0]}\n{users[0]}\n")
    assert main(["predict", str(trained_run), "--pairs", str(pairs)]) == 2
    assert f"{pairs}:2: '{users[0]}': expected a user id and an item id" in capsys.readouterr().err
    for argv, said in [
        (["--pairs", str(pairs), "--json"], "batch mode always writes JSON lines"),
        (["--pairs", str(pairs), "--user", users[0]], "give --user U with --items ITEM ..., or --pairs FILE"),
        (["--user", users[0]], "give --user U with --items ITEM ..., or --pairs FILE"),
        (["--user", users[0], "--items", items[0], "--out", str(tmp_path / "x.jsonl")], "--out writes the results of batch mode"),
        (["--pairs", str(pairs), "--out", str(pairs)], "is the --pairs itself"),
    ]:
        assert main(["predict", str(trained_run), *argv]) == 2, argv
        assert said in capsys.readouterr().err, argv
