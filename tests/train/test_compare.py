"""kgrec compare: finished runs side by side (kgrec.train.compare)."""

import json

import pytest
import yaml

from kgrec.cli.main import main
from kgrec.errors import KgrecError
from kgrec.train import train
from kgrec.train.compare import compare_runs, format_comparison
from tests.conftest import TINY_OVERRIDES, tiny_config


@pytest.fixture(scope="module")
def two_runs(clustered_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, dim in (("small", 8), ("wide", 32)):
        train(tiny_config(clustered_dataset, f"model.dim={dim}", "train.max_epochs=2"), root / name)
    return root / "small", root / "wide"


def test_the_fields_that_differ_beside_the_metrics_best_first_on_valid(two_runs):
    comparison = compare_runs(two_runs)
    assert comparison.fields == ["model.dim"] and comparison.metric == "ndcg@10" and comparison.mode == "max"
    valid = [r.valid["ndcg@10"] for r in comparison.runs]
    assert valid == sorted(valid, reverse=True)
    by_run = {r.run: r for r in comparison.runs}
    assert by_run[str(two_runs[0])].fields == {"model.dim": "8"} and by_run[str(two_runs[1])].fields == {"model.dim": "32"}
    saved = json.loads((two_runs[1] / "metrics.json").read_text())
    assert by_run[str(two_runs[1])].test == saved["test"] and by_run[str(two_runs[1])].epochs == saved["epochs"]
    lines = format_comparison(comparison).splitlines()
    assert lines[0].split()[:4] == ["run", "model.dim", "valid", "ndcg@10"]
    assert [line.split()[0] for line in lines[1:3]] == [r.run for r in comparison.runs]


def test_a_lower_is_better_metric_sorts_the_other_way(two_runs):
    rmse = [r.valid["rmse"] for r in compare_runs(two_runs, "rmse").runs]
    assert rmse == sorted(rmse)


def test_a_run_from_before_a_config_field_compares_with_that_field_at_its_default(two_runs, tmp_path):
    import shutil

    older = tmp_path / "older"
    shutil.copytree(two_runs[0], older)
    config = yaml.safe_load((older / "config.yaml").read_text())
    del config["model"]["user_features"]  # as an earlier kgrec wrote it
    (older / "config.yaml").write_text(yaml.safe_dump(config))
    assert compare_runs([two_runs[0], older]).fields == []
    assert "(the runs have the same config)" in format_comparison(compare_runs([two_runs[0], older]))


def test_runs_evaluated_on_another_split_are_ranked_with_a_note(two_runs, tmp_path, capsys):
    import shutil

    assert compare_runs(two_runs).notes == []
    other = tmp_path / "other"
    shutil.copytree(two_runs[0], other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["split"] = "ratio(0.8, 0.1, 0.1) seed=7"  # as a run trained with data.seed=7 records it
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert main(["compare", str(two_runs[0]), str(two_runs[1]), str(other)]) == 0
    assert ("note: the runs were evaluated on different interactions or splits, so their metrics do not compare "
            f"({two_runs[0]} {two_runs[1]}: clusters, split ratio(0.8, 0.1, 0.1) seed=2026; {other}: clusters, split "
            "ratio(0.8, 0.1, 0.1) seed=7)") in capsys.readouterr().err


def test_cli_prints_json_and_draws_the_plot(two_runs, tmp_path, capsys):
    assert main(["compare", *map(str, two_runs), "--json", "--plot", str(tmp_path / "c.png")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["fields"] == ["model.dim"] and len(shown["runs"]) == 2
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unfinished_runs_and_missing_metrics_are_refused(two_runs, tmp_path):
    with pytest.raises(KgrecError, match="not a finished kgrec run"):
        compare_runs([two_runs[0], tmp_path])
    with pytest.raises(KgrecError, match=r"no valid kg_mrr in metrics.json .*choose another with --metric"):
        compare_runs(two_runs, "kg_mrr")


def test_runs_still_training_are_left_out_with_a_note(two_runs, tmp_path):
    """``kgrec compare runs/tune/*/`` while the search runs: the trial in training has its
    config.yaml (and after an epoch its last.ckpt) but no manifest.json; it was refused with the lot."""
    training, interrupted = tmp_path / "training", tmp_path / "interrupted"
    training.mkdir()
    (training / "config.yaml").write_text((two_runs[0] / "config.yaml").read_text())
    (interrupted / "checkpoints").mkdir(parents=True)
    (interrupted / "checkpoints" / "last.ckpt").write_bytes(b"")
    comparison = compare_runs([*two_runs, training, interrupted])
    assert sorted(r.run for r in comparison.runs) == sorted(map(str, two_runs))
    assert comparison.notes == [f"left out 2 runs whose training has not finished (no manifest.json yet: still training, "
                                f"or interrupted): {training} {interrupted}"]  # fmt: skip
    with pytest.raises(KgrecError, match="not a finished kgrec run: its training was interrupted"):
        compare_runs([interrupted])  # nothing finished to compare
    with pytest.raises(KgrecError, match="not a finished kgrec run"):
        compare_runs([training, interrupted])
    with pytest.raises(KgrecError, match="no such folder"):
        compare_runs([*two_runs, tmp_path / "typo"])  # not a run at all: refused, as before


def test_a_tuning_folder_stands_for_the_runs_of_its_trials(clustered_dataset, tmp_path):
    from kgrec.train.tune import tune

    overrides = [f"data.path={clustered_dataset}", *TINY_OVERRIDES, "train.max_epochs=1"]
    tune({"train.lr": [0.001, 0.002]}, tmp_path / "tune", overrides=overrides, progress=False)
    comparison = compare_runs([tmp_path / "tune"])
    assert comparison.fields == ["train.lr"]
    assert sorted(r.run for r in comparison.runs) == [str(tmp_path / "tune" / f"train.lr={v}") for v in ("0.001", "0.002")]


def test_a_run_named_twice_is_one_row(two_runs, tmp_path):
    """A tuning folder beside one of its own runs, or a path spelt twice, lists each run once."""
    tuning = tmp_path / "tune"
    tuning.mkdir()
    (tuning / "tune.json").write_text(json.dumps({"trials": [{"folder": str(two_runs[0] / ".." / "small")}]}))
    comparison = compare_runs([two_runs[0], tuning, two_runs[1], f"{two_runs[1]}/"])
    assert sorted(r.run for r in comparison.runs) == sorted(str(run) for run in two_runs)


@pytest.mark.parametrize("record", ['{"trials": [', '{"monitor": "ndcg@10"}', '{"trials": [3]}'])
def test_a_tune_json_kgrec_tune_did_not_write_is_named(tmp_path, capsys, record):
    (tmp_path / "tune.json").write_text(record)
    assert main(["compare", str(tmp_path)]) == 2  # was a JSONDecodeError, KeyError or TypeError traceback
    assert capsys.readouterr().err.startswith(f"kgrec: error: {tmp_path / 'tune.json'}: not the record kgrec tune writes (")



def test_compare_plot_is_written_in_the_format_its_suffix_names(two_runs, tmp_path):
    assert main(["compare", *map(str, two_runs), "--plot", str(tmp_path / "c.pdf")]) == 0
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")  # before: PNG bytes whatever the suffix
