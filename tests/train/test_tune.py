"""Grid search on the validation split (kgrec tune)."""

import json

import pytest

import kgrec.train.tune as tune_module
from kgrec.cli.main import main
from kgrec.errors import ConfigError
from kgrec.train.tune import folder_name, format_result, parse_grid, settings, tune
from tests.conftest import TINY_OVERRIDES


def test_grid_values_are_comma_separated_or_a_yaml_list():
    grid = parse_grid(["train.lr=0.001, 1e-2", "model.trunk_hidden=[[64], [32, 16]]", "model.trunk=[mmoe, ple]"])
    assert grid == {"train.lr": ["0.001", "1e-2"], "model.trunk_hidden": ["[64]", "[32, 16]"], "model.trunk": ["mmoe", "ple"]}
    assert settings({"a": ["1", "2"], "b": ["x", "y"]}) == [
        {"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "2", "b": "x"}, {"a": "2", "b": "y"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["train.lr"], "expected section.field=value1,value2"),
        (["train.lr=0.1", "train.lr=0.2"], "train.lr is given twice"),
        (["train.lr=0.1,0.1"], "a value is listed twice"),
        (["train.lr=0.1,"], "an empty value"),
        (["model.trunk_hidden=[[64]"], "not a YAML list"),
        ([], "give at least one --grid"),
    ],
)
def test_bad_grids_are_refused(specs, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid(specs)


def test_folder_names_are_readable_and_never_shared():
    assert folder_name({"train.lr": "0.001", "model.dim": "32"}) == "train.lr=0.001,model.dim=32"
    names = {folder_name({"model.trunk_hidden": v}) for v in ("[64]", "64", "[6, 4]", "[64, ]")}
    assert len(names) == 4 and all("/" not in n and " " not in n for n in names)


def base(data):
    return [f"data.path={data}", *TINY_OVERRIDES, "train.max_epochs=2"]


def test_tune_trains_every_setting_and_chooses_on_valid(clustered_dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "tune"
    result = tune({"train.lr": [0.0001, 0.01]}, out, overrides=base(clustered_dataset), progress=False)
    assert [t.setting for t in result.trials] == [{"train.lr": "0.0001"}, {"train.lr": "0.01"}]
    best = max(result.trials, key=lambda t: t.valid["ndcg@10"])
    assert result.best is best and result.monitor == "ndcg@10"
    saved = json.loads((out / "tune.json").read_text())
    assert saved["best"]["folder"] == best.folder and saved["best"]["test"] == best.test
    assert all("test" not in trial for trial in saved["trials"])
    for trial in result.trials:  # each setting trained as a normal run with its own value
        run_config = (out / trial.folder / "config.yaml").read_text()
        assert f"lr: {trial.setting['train.lr']}" in run_config
    assert (out / "tune.png").stat().st_size > 0
    report = format_result(result, out)
    assert f"chosen on valid ndcg@10: train.lr={best.setting['train.lr']}" in report
    assert report.count("its test:") == 1 and f"{best.test['ndcg@10']:.4f}" in report.split("its test:")[1]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(tune_module, "train", no_training)
    again = tune({"train.lr": [0.0001, 0.01]}, out, overrides=base(clustered_dataset), progress=False)
    assert [t.valid for t in again.trials] == [t.valid for t in result.trials]
    capsys.readouterr()
    narrower = tune({"train.lr": [0.01]}, out, overrides=base(clustered_dataset), progress=False)
    assert [t.setting for t in narrower.trials] == [{"train.lr": "0.01"}]  # tune.json holds this search ...
    assert (f"note: {out} also holds 1 run of another search, not compared here ('train.lr=0.0001'); "
            f"kgrec compare {out}/*/ ranks every run in it") in capsys.readouterr().err  # ... and says what it left out
    with pytest.raises(ConfigError, match=r"finished run of another config \(differs in: model.dim\)"):
        tune({"train.lr": [0.0001]}, out, overrides=[*base(clustered_dataset), "model.dim=8"], progress=False)


def test_a_field_in_both_the_grid_and_the_overrides_is_refused(clustered_dataset, tmp_path):
    with pytest.raises(ConfigError, match="train.lr is both in the search and in --set"):
        tune({"train.lr": [0.1]}, tmp_path, overrides=[*base(clustered_dataset), "train.lr=0.2"])


def test_kg_only_runs_have_nothing_to_choose_on(clustered_dataset, tmp_path):
    with pytest.raises(ConfigError, match="the kg tower alone, without graph.kg_holdout"):
        tune({"train.lr": [0.1, 0.2]}, tmp_path, overrides=[*base(clustered_dataset), "model.tasks=[kg]"])


def test_cli_prints_the_table_best_first(clustered_dataset, tmp_path, capsys):
    args = ["tune", "--data", str(clustered_dataset), "--grid", "model.trunk=identity,mmoe", "--out", str(tmp_path / "t")]
    assert main([*args, *(x for o in TINY_OVERRIDES for x in ("--set", o)), "--set", "train.max_epochs=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model.trunk", "valid", "ndcg@10", "epochs", "seconds"]
    values = [float(line.split()[1]) for line in lines[1:3]]
    assert values == sorted(values, reverse=True) and lines[4].startswith(f"chosen on valid ndcg@10: model.trunk={lines[1].split()[0]}")


def test_a_run_asked_for_before_a_config_field_existed_is_read_back_at_its_default(clustered_dataset, tmp_path, monkeypatch):
    out = tmp_path / "tune"
    first = tune({"train.lr": [0.01]}, out, overrides=base(clustered_dataset), progress=False)
    marker = out / first.trials[0].folder / ".tune-request.json"
    older = json.loads(marker.read_text())
    del older["graph"]["kg_holdout"]  # as an earlier kgrec recorded it
    marker.write_text(json.dumps(older))
    monkeypatch.setattr(tune_module, "train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    again = tune({"train.lr": [0.01]}, out, overrides=base(clustered_dataset), progress=False)
    assert again.trials[0].valid == first.trials[0].valid
    with pytest.raises(ConfigError, match=r"differs in: graph.kg_holdout"):
        tune({"train.lr": [0.01]}, out, overrides=[*base(clustered_dataset), "graph.kg_holdout=0.2"], progress=False)


def test_the_trials_of_a_tune_share_one_teacher_fit_and_train_as_alone(clustered_dataset, tmp_path, monkeypatch):
    """Every trial refitted the EASE teacher (and chose its L2 weight on valid again), though the
    split and the teacher settings are the same: 11-25 s a trial on ML-1M."""
    from kgrec.train import load_config, train
    from kgrec.train import teacher as teacher_module

    fits = []
    fit = teacher_module.EaseTeacher.fit.__func__

    def counted(cls, *args, **kwargs):
        fits.append(1)
        return fit(cls, *args, **kwargs)

    monkeypatch.setattr(teacher_module.EaseTeacher, "fit", classmethod(counted))
    distil = [f"data.path={clustered_dataset}", *TINY_OVERRIDES, "train.max_epochs=2", "model.distill_weight=10"]
    result = tune({"train.lr": [0.01, 0.005]}, tmp_path / "tune", overrides=distil, progress=False)
    assert len(fits) == 1  # was 2
    alone = train(load_config(None, [*distil, "train.lr=0.005"]), tmp_path / "alone")
    assert len(fits) == 2  # outside a tune, each run fits its own
    [reused] = [t for t in result.trials if t.setting == {"train.lr": "0.005"}]
    assert reused.valid == alone["valid"]  # the shared teacher trains the trial as its own would
