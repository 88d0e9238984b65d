"""``kgrec eval-lists``: another tool's ranked lists scored with kgrec's own protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kgrec.baselines import EASE
from kgrec.cli.main import main
from kgrec.data import SplitConfig, load_dataset
from kgrec.errors import DataError
from kgrec.eval.lists import evaluate_lists, read_lists
from kgrec.eval.ranking import evaluate_split


@pytest.fixture(scope="module")
def dataset(clustered_dataset: Path):
    return load_dataset(clustered_dataset, SplitConfig(seed=5))


def write_lists(path: Path, dataset, scores: torch.Tensor, k: int, exclude_seen: bool = True) -> Path:
    """Each user's top ``k`` items by ``scores`` as JSON lines, train and valid items left out."""
    scores = scores.clone()
    if exclude_seen:
        for part in (dataset.train, dataset.valid):
            scores[torch.as_tensor(part.user), torch.as_tensor(part.item)] = float("-inf")
    top = scores.topk(k, dim=1).indices
    lines = [json.dumps({"user": str(dataset.users[u]), "items": [str(dataset.items[i]) for i in top[u].tolist()]})
             for u in range(dataset.n_users)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_lists_of_a_model_score_what_evaluating_the_model_scores(dataset, tmp_path: Path):
    """EASE evaluated directly and through its top-20 lists written to a file agree at 10 and 20,
    list metrics included; lists that keep the seen items are cut the same after they go."""
    ease = EASE(reg=50.0).fit(dataset.train, dataset.n_users, dataset.n_items)
    direct = evaluate_split(ease.score, dataset, "test")
    scores = ease.score(torch.arange(dataset.n_users))
    from_file = evaluate_lists(dataset, read_lists(write_lists(tmp_path / "a.jsonl", dataset, scores, 20), dataset))
    for key, value in direct.items():
        assert from_file[key] == pytest.approx(value, abs=1e-6), key
    assert from_file["n_lists"] == len(set(dataset.test.user.tolist())) and from_file["seen_listed"] == 0
    longer = evaluate_lists(dataset, read_lists(write_lists(tmp_path / "b.jsonl", dataset, scores, 40, False), dataset))
    assert longer["ndcg@10"] == pytest.approx(direct["ndcg@10"], abs=1e-6) and longer["seen_listed"] > 0


def test_a_user_without_a_list_counts_as_an_empty_one(dataset, tmp_path: Path):
    ease = EASE(reg=50.0).fit(dataset.train, dataset.n_users, dataset.n_items)
    path = write_lists(tmp_path / "a.jsonl", dataset, ease.score(torch.arange(dataset.n_users)), 20)
    full = evaluate_lists(dataset, read_lists(path, dataset))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    half = evaluate_lists(dataset, read_lists(path, dataset))
    assert half["n_users"] == full["n_users"] and half["n_lists"] < full["n_lists"]
    assert 0 < half["recall@20"] < full["recall@20"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"items": ["i1"]}', 'expected {"user": ID'),
        ('{"user": "nobody", "items": ["i1"]}', "unknown user 'nobody'"),
        ('{"user": "u1", "items": ["i1", "zz"]}', "unknown item 'zz'"),
        ('{"user": "u1", "items": ["i1", "i1"]}', "an item appears twice"),
        ('{"user": "u1", "items": ["i1"]}\n{"user": "u1", "items": ["i2"]}', "has a list on an earlier line"),
    ],
)
def test_a_bad_line_is_named_at_its_file_and_line(dataset, tmp_path: Path, line: str, message: str):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"user": "u0", "results": [{"item_id": "i1"}]}\n' + line + "\n")
    with pytest.raises(DataError, match=message) as error:
        read_lists(path, dataset)
    assert error.value.path == path and error.value.line == line.count("\n") + 2


def test_the_command_prints_the_metrics_beside_the_baselines(clustered_dataset: Path, dataset, tmp_path: Path, capsys):
    ease = EASE(reg=50.0).fit(dataset.train, dataset.n_users, dataset.n_items)
    path = write_lists(tmp_path / "a.jsonl", dataset, ease.score(torch.arange(dataset.n_users)), 20)
    argv = ["eval-lists", str(path), "--data", str(clustered_dataset), "--set", "data.seed=5"]
    assert main([*argv, "--baselines"]) == 0
    out = capsys.readouterr().out
    assert f"lists for {len(set(dataset.test.user.tolist()))} of the" in out and "these lists / EASE" in out
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["test"]
    assert printed["ndcg@10"] == pytest.approx(evaluate_split(ease.score, dataset, "test")["ndcg@10"], abs=1e-6)


def test_a_byte_order_mark_is_not_part_of_the_first_line(dataset, tmp_path: Path):
    path = tmp_path / "bom.jsonl"
    path.write_text('{"user": "u0", "items": ["i1", "i2"]}\n', encoding="utf-8-sig")
    assert read_lists(path, dataset) == {dataset.user_index("u0"): [dataset.item_index("i1"), dataset.item_index("i2")]}


def test_a_cold_item_split_counts_listed_items_it_does_not_rank(clustered_dataset: Path, tmp_path: Path):
    cold = load_dataset(clustered_dataset, SplitConfig(strategy="cold_item", cold_item_share=0.2, seed=1))
    new_in_test = sorted(set(cold.test.item.tolist()))
    old = sorted(set(cold.train.item.tolist()) - set(cold.valid.item.tolist()))
    user = int(cold.test.user[0])
    lists = {user: [old[0], new_in_test[0], old[1]]}  # two items the cold-item test does not rank
    metrics = evaluate_lists(cold, lists)
    assert metrics["outside_candidates"] == 2 and metrics["n_lists"] == 1


def test_baselines_are_refused_on_the_part_they_are_tuned_on(clustered_dataset: Path, tmp_path: Path, capsys):
    path = tmp_path / "a.jsonl"
    path.write_text('{"user": "u0", "items": ["i1"]}\n')
    assert main(["eval-lists", str(path), "--data", str(clustered_dataset), "--part", "valid", "--baselines"]) == 2
    assert "--baselines is for --part test" in capsys.readouterr().err


def test_lists_that_left_out_the_part_itself_get_a_note(clustered_dataset: Path, tmp_path: Path, capsys):
    """Lists written without the user's test items (``recommend`` without ``--include-seen``
    leaves out every item a user interacted with) score zero, and the command says why."""
    dataset = load_dataset(clustered_dataset)
    scores = torch.rand(dataset.n_users, dataset.n_items)
    scores[torch.as_tensor(dataset.test.user), torch.as_tensor(dataset.test.item)] = float("-inf")
    path = write_lists(tmp_path / "a.jsonl", dataset, scores, 10)
    assert main(["eval-lists", str(path), "--data", str(clustered_dataset)]) == 0
    assert "note: no list holds any of its user's test items, at any rank" in capsys.readouterr().err
    scores = torch.rand(dataset.n_users, dataset.n_items)
    metrics = evaluate_lists(dataset, read_lists(write_lists(tmp_path / "b.jsonl", dataset, scores, dataset.n_items // 2), dataset))
    assert metrics["part_listed"] > 0  # lists that may hold them hold some
    assert main(["eval-lists", str(tmp_path / "b.jsonl"), "--data", str(clustered_dataset)]) == 0
    assert "note: no list holds" not in capsys.readouterr().err  # (a short list may still get its own note)
