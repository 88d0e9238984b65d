"""What a user does with finished runs, at the edges: compare, tune, eval and eval-lists given
runs, folders and files that are not quite what they expect."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kgrec.cli.main import main
from kgrec.data import SplitConfig, load_dataset
from kgrec.errors import ConfigError
from kgrec.eval.lists import evaluate_lists, read_lists
from kgrec.train import train
from kgrec.train.compare import compare_runs, format_comparison
from kgrec.train.space import parse_space
from tests.conftest import TINY_OVERRIDES, tiny_config, with_late_joiners, write_atomic


@pytest.fixture(scope="module")
def run(clustered_dataset, tmp_path_factory) -> Path:
    """One finished tiny run (read-only: copy it to change it)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), out)
    return out


def copy_run(run: Path, folder: Path) -> Path:
    return Path(shutil.copytree(run, folder))


def test_compare_keeps_the_test_columns_of_runs_beside_one_without_them(run, tmp_path):
    """A run without the rating tower beside one with it: the table showed no test rmse for either."""
    retrieval_only = copy_run(run, tmp_path / "retrieval-only")
    metrics = json.loads((retrieval_only / "metrics.json").read_text())
    for part in ("valid", "test"):
        for key in ("rmse", "mae", "auc"):
            del metrics[part][key]
    (retrieval_only / "metrics.json").write_text(json.dumps(metrics))
    lines = format_comparison(compare_runs([run, retrieval_only])).splitlines()
    header, rows = lines[0], {line.split()[0]: line.split() for line in lines[1:3]}
    assert "test rmse" in header and "test auc" in header
    saved = json.loads((run / "metrics.json").read_text())["test"]
    assert f"{saved['rmse']:.4f}" in rows[str(run)] and rows[str(retrieval_only)].count("-") == 2


@pytest.mark.parametrize(("name", "text"), [("metrics.json", None), ("metrics.json", "{"), ("config.yaml", None),
                                            ("config.yaml", "data: [")])  # fmt: skip
def test_compare_names_a_run_whose_metrics_or_config_is_missing_or_damaged(run, tmp_path, capsys, name, text):
    damaged = copy_run(run, tmp_path / "damaged")
    if text is None:
        (damaged / name).unlink()
    else:
        (damaged / name).write_text(text)
    assert main(["compare", str(run), str(damaged)]) == 2  # was a FileNotFoundError, JSON or YAML traceback
    err = capsys.readouterr().err
    assert err.startswith(f"kgrec: error: {damaged / name}: ") and err.count("\n") == 1


@pytest.mark.parametrize("spec", ["train.lr=uniform(0,inf)", "train.lr=loguniform(1e-4,1e400)", "model.dim=randint(1,1e20)"])
def test_sample_bounds_that_cannot_be_drawn_are_refused(spec):
    with pytest.raises(ConfigError, match=rf"--sample '{spec.replace('(', '.').replace(')', '.')}': "):
        parse_space([spec])  # drew: OverflowError or ValueError from numpy, as a traceback


def test_tune_refuses_grid_values_that_ask_for_the_same_run(clustered_dataset, tmp_path, monkeypatch):
    """``0.001`` and ``1e-3`` trained one run and listed it twice, as two settings."""
    from kgrec.train import tune as tune_module

    monkeypatch.setattr(tune_module, "train", lambda *args, **kwargs: pytest.fail("trained"))
    overrides = [f"data.path={clustered_dataset}", *TINY_OVERRIDES]
    with pytest.raises(ConfigError, match=r"train.lr=0.001 and train.lr=1e-3 ask for the same run"):
        tune_module.tune({"train.lr": ["0.001", "1e-3"]}, tmp_path / "tune", overrides=overrides, progress=False)


def test_eval_lists_counts_and_notes_the_lists_it_does_not_score(clustered_dataset, tmp_path, capsys):
    """Lists for users with no test items (or new since training) were dropped without a word."""
    data = with_late_joiners(clustered_dataset, tmp_path)
    dataset = load_dataset(data, SplitConfig(strategy="global_temporal"))
    path = tmp_path / "lists.jsonl"
    path.write_text("".join(json.dumps({"user": str(u), "items": [str(i) for i in dataset.items[:20]]}) + "\n"
                            for u in dataset.users))  # fmt: skip
    metrics = evaluate_lists(dataset, read_lists(path, dataset))
    assert metrics["n_lists"] + metrics["unscored_lists"] == dataset.n_users and metrics["unscored_lists"] > 0
    assert main(["eval-lists", str(path), "--data", str(data), "--set", "data.split=global_temporal"]) == 0
    assert (f"note: {metrics['unscored_lists']} of the {dataset.n_users} lists are for users the test part does not "
            "score (no test items, or none in training): left out") in capsys.readouterr().err  # fmt: skip


def test_eval_lists_on_a_catalogue_smaller_than_k_is_one_line(tmp_path, capsys):
    rows = [f"u{u}|i{i}|4|{u * 20 + i}" for u in range(8) for i in range(u % 3, 15, 2)]
    data = write_atomic(tmp_path, "small", {"inter": "\n".join(["user_id:token|item_id:token|rating:float|timestamp:float", *rows])})
    (tmp_path / "lists.jsonl").write_text('{"user": "u1", "items": ["i1", "i3"]}\n')
    assert main(["eval-lists", str(tmp_path / "lists.jsonl"), "--data", str(data)]) == 2  # was a ValueError traceback
    assert capsys.readouterr().err == ("kgrec: error: small has 15 items: the lists are scored at K = 10 and 20, so "
                                       "the catalogue needs at least 20\n")  # fmt: skip


def test_eval_baselines_of_a_run_with_other_cut_offs_are_set_beside_its_metrics_at_10_and_20(clustered_dataset, tmp_path,
                                                                                           capsys):  # fmt: skip
    """A run evaluated at eval.ks=[5]: --baselines (ranked at 10 and 20) was a KeyError traceback."""
    train(tiny_config(clustered_dataset, "train.max_epochs=1", "eval.ks=[5]"), tmp_path / "k5")
    assert main(["eval", str(tmp_path / "k5"), "--baselines"]) == 0
    table = capsys.readouterr().out.split("test (same split)")[1].splitlines()
    assert table[1].startswith("this run") and "-" not in table[1].split()[2:] and table[-1].startswith("this run / EASE: ndcg@10 x")
    assert main(["eval", str(tmp_path / "k5"), "--json"]) == 0
    assert "ndcg@10" not in json.loads(capsys.readouterr().out)["test"]  # without --baselines: the run's own cut-offs
