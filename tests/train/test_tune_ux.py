"""``kgrec tune`` as a user meets it: where it may write, what it may search, and which earlier
runs it reads back instead of training again (training itself is faked: these are about the
search's bookkeeping)."""

from __future__ import annotations

from pathlib import Path

import pytest

import kgrec.train.tune as tune_module
from kgrec.cli.main import main
from kgrec.errors import ConfigError
from kgrec.train.tune import tune
from tests.conftest import TINY_OVERRIDES


@pytest.fixture
def trained(monkeypatch) -> list[str]:
    """The run folders ``train`` is asked to train into, in order; each run 'scores' its lr."""
    folders: list[str] = []

    def fake_train(config, folder: Path) -> dict:
        folders.append(folder.name)
        metrics = {"ndcg@10": config.train.lr}
        return {"valid": metrics, "test": metrics, "epochs": 1, "train_seconds": 0.0}

    monkeypatch.setattr(tune_module, "train", fake_train)
    return folders


def overrides(data: Path | str) -> list[str]:
    return [f"data.path={data}", *TINY_OVERRIDES]


def test_grid_fields_in_another_order_reuse_the_runs_asked_for_before(clustered_dataset, tmp_path, trained):
    out = tmp_path / "tune"
    tune({"train.lr": [0.001, 0.01], "train.patience": [4]}, out, overrides=overrides(clustered_dataset), progress=False)
    first = list(trained)
    result = tune({"train.patience": [4], "train.lr": ["1e-3", 0.01]}, out, overrides=overrides(clustered_dataset), progress=False)
    assert trained[len(first):] == first  # the same folders resumed, no new ones
    assert [t.folder for t in result.trials] == first
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(first)


def test_a_relative_and_an_absolute_data_path_ask_for_the_same_run(clustered_dataset, tmp_path, trained, monkeypatch):
    monkeypatch.chdir(clustered_dataset.parent)
    out = tmp_path / "tune"
    tune({"train.lr": [0.01]}, out, overrides=overrides(clustered_dataset.name), progress=False)
    tune({"train.lr": [0.01]}, out, overrides=overrides(clustered_dataset.resolve()), progress=False)  # was refused:
    assert trained == ["train.lr=0.01", "train.lr=0.01"]  # "holds an unfinished run of another config (data.path)"
    with pytest.raises(ConfigError, match=r"differs in: data.name, data.path"):  # another folder (and its name) still differs
        tune({"train.lr": [0.01]}, out, overrides=overrides(tmp_path / "elsewhere"), progress=False)


@pytest.mark.parametrize(("grid", "space"), [({"data.seed": [1, 2]}, None), ({}, "data.seed=randint(1,9)")])
def test_a_data_field_in_the_search_is_refused(clustered_dataset, tmp_path, trained, grid, space):
    """Each setting would be split, and chosen, on another validation set."""
    from kgrec.train.space import parse_space

    sampled = parse_space([space]) if space else None
    with pytest.raises(ConfigError, match="data.seed is in the search, but it changes the data"):
        tune(grid, tmp_path / "t", overrides=overrides(clustered_dataset), progress=False, space=sampled,
             trials=2 if space else None)  # fmt: skip
    assert trained == [] and not (tmp_path / "t").exists()


def test_an_out_that_is_a_file_or_a_run_folder_is_refused_before_any_work(clustered_dataset, tmp_path, trained, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    for out in (a_file, a_file / "sub"):
        argv = ["tune", "--data", str(clustered_dataset), "--grid", "train.lr=0.01", "--out", str(out)]
        assert main(argv) == 2  # was a FileExistsError / NotADirectoryError traceback
        assert capsys.readouterr().err.splitlines()[-1] == f"kgrec: error: --out {out}: {a_file} is a file; give a folder for the runs of the search"
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="is the run folder of kgrec train"):
        tune({"train.lr": [0.01]}, run, overrides=overrides(clustered_dataset), progress=False)
    assert trained == [] and a_file.read_text() == "mine\n" and sorted(p.name for p in run.iterdir()) == ["manifest.json"]


def test_a_run_s_check_is_located_in_the_config_file_unless_the_search_sets_the_key(clustered_dataset, tmp_path, monkeypatch, capsys):
    def diverging(config, folder: Path) -> dict:
        raise ConfigError("train.lr: training diverged in epoch 0", key="train.lr")

    monkeypatch.setattr(tune_module, "train", diverging)
    config = tmp_path / "my.yaml"
    config.write_text("model:\n  dim: 8\ntrain:\n  lr: 1.0e+30\n")
    argv = ["tune", "--config", str(config), "--data", str(clustered_dataset), "--out", str(tmp_path / "t")]
    assert main([*argv, "--grid", "train.patience=3,4"]) == 2
    assert capsys.readouterr().err.endswith(f"kgrec: error: {config}:4:3: train.lr: training diverged in epoch 0\n")  # before: no place
    assert main([*argv, "--grid", "train.lr=1,2"]) == 2  # the search sets it: no place in the file
    assert capsys.readouterr().err.endswith("kgrec: error: train.lr: training diverged in epoch 0\n")
