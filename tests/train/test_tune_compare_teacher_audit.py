"""Audit of ``kgrec tune``, ``kgrec compare`` and the EASE teacher at their edges: empty or
failing searches, settings that diverge, runs without the compared metric, NaN values, small
catalogues, tiny L2 weights and memory. Training is faked (finished run folders written by hand)
and the teacher's data are synthetic, so each test takes well under a second or two."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import kgrec.train.teacher as teacher_module
import kgrec.train.tune as tune_module
from kgrec.baselines import EASE
from kgrec.data.dataset import Dataset, Interactions
from kgrec.errors import ConfigError, DivergedError, KgrecError
from kgrec.train.compare import compare_runs, format_comparison
from kgrec.train.config import config_yaml
from kgrec.train.space import parse_space
from kgrec.train.teacher import EaseTeacher
from kgrec.train.tune import FAILED, format_result, tune
from tests.conftest import TINY_OVERRIDES, tiny_config

DIVERGED = ("train.lr: training diverged in epoch 0: the model scores items as NaN (its weights overflowed), most often "
            "from too high a learning rate (train.lr=0.9); lower train.lr, or set train.grad_clip (a norm such as 1.0)")  # fmt: skip


def write_run(folder: Path, config, valid: dict[str, float], split: str = "ratio(0.8, 0.1, 0.1) seed=2026") -> dict:
    """A finished run folder as ``kgrec train`` leaves it, as far as tune and compare read it."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {"valid": valid, "test": dict(valid), "train_seconds": 1.0, "epochs": 3, "seconds_per_epoch": 0.3,
               "best_epoch": 1, "stopped_by": "max_epochs", "resumed": False}  # fmt: skip
    (folder / "config.yaml").write_text(config_yaml(config), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    manifest = {"format": "kgrec-run", "format_version": 1, "dataset": "clusters", "dataset_path": "/data/clusters",
                "split": split, "sources": [{"file": "clusters.inter", "sha256": "ab"}], "files": []}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return metrics


@pytest.fixture
def trained(monkeypatch) -> list[str]:
    """The folders ``train`` trains, in order. Each run scores its lr on valid, NaN at lr 0.5,
    and diverges (as the module says it) at lr >= 0.9; a finished run is written as one."""
    folders: list[str] = []

    def fake_train(config, folder: Path) -> dict:
        folders.append(folder.name)
        lr = config.train.lr
        if lr >= 0.9:
            raise DivergedError(DIVERGED, key="train.lr")
        return write_run(folder, config, {"ndcg@10": math.nan if lr == 0.5 else lr})

    monkeypatch.setattr(tune_module, "train", fake_train)
    return folders


def overrides(data: Path | str = "unused") -> list[str]:
    return [f"data.path={data}", *TINY_OVERRIDES]


# ---------------------------------------------------------------------------------------- tune


@pytest.mark.parametrize(
    ("grid", "space", "trials", "message"),
    [
        ({}, None, None, "give the fields to search"),  # trained one run into the tuning folder itself
        ({"train.lr": []}, None, None, "train.lr: no values to search"),  # IndexError
        ({"train.lr": []}, "model.id_dropout=uniform(0,0.3)", 2, "train.lr: no values to search"),  # numpy ValueError
    ],
)
def test_an_empty_search_is_refused_before_any_training(tmp_path, trained, grid, space, trials, message):
    with pytest.raises(ConfigError, match=message):
        tune(grid, tmp_path / "t", overrides=overrides(), progress=False, space=parse_space([space]) if space else None,
             trials=trials)  # fmt: skip
    assert trained == [] and not (tmp_path / "t").exists()


def test_a_diverging_setting_is_recorded_skipped_and_not_trained_again(tmp_path, trained):
    """One diverging setting ended the search, and a rerun trained it again and ended again:
    a search that drew one too-high learning rate could never finish."""
    out = tmp_path / "t"
    result = tune({"train.lr": [0.001, 0.9, 0.01]}, out, overrides=overrides(), progress=False)
    assert trained == ["train.lr=0.001", "train.lr=0.9", "train.lr=0.01"]
    assert result.best.setting == {"train.lr": "0.01"}
    failed = result.trials[1]
    assert failed.error == DIVERGED and failed.score("ndcg@10") is None
    saved = json.loads((out / "tune.json").read_text())
    assert saved["trials"][1]["error"] == DIVERGED and "error" not in saved["trials"][0]
    assert saved["best"]["folder"] == "train.lr=0.01"
    assert json.loads((out / "train.lr=0.9" / FAILED).read_text()) == {"error": DIVERGED, "key": "train.lr"}
    table = format_result(result, out).splitlines()
    assert [line.split()[:2] for line in table[1:4]] == [["0.01", "0.0100"], ["0.001", "0.0010"], ["0.9", "failed"]]
    assert table[-1].startswith("failed, not compared: 1 setting ('train.lr=0.9'; delete its folder to train it again): ")
    again = tune({"train.lr": [0.001, 0.9, 0.01]}, out, overrides=overrides(), progress=False)
    assert len(trained) == 3  # finished runs read back, the failure read back: nothing trained again
    assert [t.error for t in again.trials] == [None, DIVERGED, None] and again.best.folder == "train.lr=0.01"


def test_when_every_setting_diverges_the_search_ends_with_the_error_after_trying_each(tmp_path, trained):
    out = tmp_path / "t"
    with pytest.raises(ConfigError, match="training diverged in epoch 0") as raised:
        tune({"train.lr": [0.9, 1.0]}, out, overrides=overrides(), progress=False)
    assert raised.value.key == "train.lr"  # the CLI places it in the config file, as before
    assert trained == ["train.lr=0.9", "train.lr=1.0"]
    saved = json.loads((out / "tune.json").read_text())
    assert saved["best"] is None and [t["error"] for t in saved["trials"]] == [DIVERGED, DIVERGED]


def test_a_nan_valid_value_is_never_chosen(tmp_path, trained):
    result = tune({"train.lr": [0.5, 0.001, 0.002]}, tmp_path / "t", overrides=overrides(), progress=False)
    assert result.best.setting == {"train.lr": "0.002"}  # NaN was chosen: it compares False with everything
    assert [t.setting["train.lr"] for t in result.ranked()] == ["0.002", "0.001", "0.5"]
    assert json.loads((tmp_path / "t" / "tune.json").read_text())["best"]["folder"] == "train.lr=0.002"


def test_the_plot_highlights_the_chosen_setting_on_a_tie(tmp_path, monkeypatch):
    """On a tie the earlier setting is chosen; the plot coloured the later one as the best."""
    captured = []
    monkeypatch.setattr(tune_module, "write_figure", lambda figure, out, dpi=None: captured.append(figure) or Path(out))
    trials = [tune_module.Trial({"train.lr": lr}, f"train.lr={lr}", {"ndcg@10": 0.2}, {}, 1, 0.0) for lr in ("0.1", "0.2")]
    result = tune_module.TuneResult("ndcg@10", "max", trials)
    assert result.best is trials[0]
    tune_module.plot_tuning(result, tmp_path / "t.png")
    axis = captured[0].axes[0]
    highlighted = [tick.get_text() for tick, bar in zip(axis.get_yticklabels(), axis.patches, strict=True)
                   if bar.get_facecolor()[:3] == pytest.approx((0x33 / 255, 0x55 / 255, 0x77 / 255))]  # fmt: skip
    assert highlighted == ["lr=0.1"]


@pytest.mark.parametrize("spec", ["train.lr=uniform(nan,1)", "train.lr=loguniform(1e-4,nan)"])
def test_a_nan_bound_is_named_as_not_a_finite_number(spec):
    with pytest.raises(ConfigError, match="the bounds must be finite numbers"):  # was "expected LOW < HIGH"
        parse_space([spec])


# ------------------------------------------------------------------------------------- compare


def test_compare_leaves_out_runs_without_the_metric_with_a_note(tmp_path):
    """A rating-only run among retrieval runs refused the lot, whichever --metric was asked."""
    retrieval = [write_run(tmp_path / name, tiny_config("unused"), {"ndcg@10": v}) and tmp_path / name
                 for name, v in (("a", 0.1), ("b", 0.3))]  # fmt: skip
    rating = tmp_path / "rating"
    write_run(rating, tiny_config("unused", "model.tasks=[rating]"), {"rmse": 0.9})
    comparison = compare_runs([*retrieval, rating], "ndcg@10")
    assert [r.run for r in comparison.runs] == [str(tmp_path / "b"), str(tmp_path / "a")]
    assert comparison.fields == []  # the differing fields are those of the runs compared
    assert comparison.notes == [f"left out 1 run without a valid ndcg@10 (trained without its tower or with other "
                                f"eval.ks; choose another with --metric): {rating}"]  # fmt: skip
    with pytest.raises(KgrecError, match=r"no valid kg_mrr in metrics.json .*choose another with --metric"):
        compare_runs([*retrieval, rating], "kg_mrr")  # none has it: refused, as before


def test_compare_sorts_a_nan_value_last(tmp_path):
    runs = []
    for name, value in (("nan", math.nan), ("low", 0.1), ("high", 0.3)):
        write_run(tmp_path / name, tiny_config("unused"), {"ndcg@10": value})
        runs.append(tmp_path / name)
    assert [Path(r.run).name for r in compare_runs(runs).runs] == ["high", "low", "nan"]


def test_compare_names_a_setting_that_diverged_in_tune_not_as_still_training(tmp_path, trained):
    out = tmp_path / "t"
    tune({"train.lr": [0.001, 0.9]}, out, overrides=overrides(), progress=False)
    (out / "train.lr=0.9" / "config.yaml").write_text("{}")  # what the run wrote before it diverged
    comparison = compare_runs([out])
    assert [Path(r.run).name for r in comparison.runs] == ["train.lr=0.001"]
    assert comparison.notes == [f"left out 1 run whose training diverged in kgrec tune ({FAILED} says why): "
                                f"{out / 'train.lr=0.9'}"]  # fmt: skip
    assert "sorted by valid ndcg@10" in format_comparison(comparison)
    with pytest.raises(KgrecError, match=r"train.lr=0.9: its training diverged in kgrec tune \(train.lr: training diverged"):
        compare_runs([out / "train.lr=0.9"])


# ------------------------------------------------------------------------------------- teacher


def synthetic(n_users: int = 30, n_items: int = 12, seed: int = 0, timestamps: bool = True) -> Dataset:
    """Each user rates 6 of ``n_items`` items at random times: 4 train, 1 valid, 1 test."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[int, int, float]]] = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        items = rng.choice(n_items, size=min(6, n_items), replace=False)
        times = np.sort(rng.uniform(0, 1e6, size=len(items)))
        for k, (i, t) in enumerate(zip(items, times, strict=True)):
            parts["train" if k < len(items) - 2 else "valid" if k == len(items) - 2 else "test"].append((u, int(i), float(t)))

    def part(rows: list[tuple[int, int, float]]) -> Interactions:
        a = np.array(rows, dtype=np.float64).reshape(-1, 3)
        return Interactions(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), None, a[:, 2] if timestamps else None)

    return Dataset("synthetic", Path("."), np.array([f"u{u}" for u in range(n_users)]),
                   np.array([f"i{i}" for i in range(n_items)]), part(parts["train"]), part(parts["valid"]),
                   part(parts["test"]), "synthetic")  # fmt: skip


@pytest.mark.parametrize("options", [{}, {"recency_hours": "auto"}, {"user_weight": 1.0}], ids=["reg", "recency", "user EASE"])
@pytest.mark.parametrize("n_items", [3, 12])
def test_the_teacher_is_tuned_on_valid_for_a_catalogue_under_20_items(n_items, options):
    """A run with eval.ks=[5] on 12 items stopped in the teacher's valid tuning with a ValueError
    traceback: it ranked valid at K = 10 and 20."""
    ds = synthetic(n_items=n_items)
    teacher = EaseTeacher.fit(ds, **options)  # type: ignore[arg-type]
    assert teacher.reg in EASE.REG_GRID and teacher.reg_tuned
    scores = teacher.scores(torch.arange(ds.n_users))
    assert scores.shape == (ds.n_users, n_items) and not torch.isnan(scores).any()


def test_the_valid_tuning_reads_valid_as_labels_and_never_test():
    """The L2 weight (and the recency decay) chosen on valid: the teacher is EASE fitted on the
    training rows alone at that weight, whatever the test part holds."""
    ds = synthetic(n_users=40, n_items=25)
    auto = EaseTeacher.fit(ds, recency_hours="auto")
    other_test = dataclasses.replace(ds, test=synthetic(n_users=40, n_items=25, seed=9).train)
    again = EaseTeacher.fit(other_test, recency_hours="auto")
    assert (again.reg, again.recency_hours) == (auto.reg, auto.recency_hours)
    torch.testing.assert_close(again.weight, auto.weight)
    alone = EASE(auto.reg).fit(ds.train, ds.n_users, ds.n_items)  # train rows only: valid is no input
    torch.testing.assert_close(auto.weight, alone.weight)


def test_an_l2_weight_too_small_for_float64_is_a_config_error():
    """LAPACK's 'not positive-definite' traceback, from a train.teacher_reg given by hand: items 0
    and 1 have the same users, and users 2k and 2k + 1 the same items (singular Gram matrices)."""
    rows = [(u, i) for u in range(10) for i in (0, 1, 2 + u // 2 % 3)]
    user, item = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
    held = np.arange(10, dtype=np.int64)
    ds = dataclasses.replace(synthetic(n_users=10, n_items=8), train=Interactions(user, item),
                             valid=Interactions(held, np.full(10, 6)), test=Interactions(held, np.full(10, 7)))  # fmt: skip
    with pytest.raises(ConfigError, match=r"train.teacher_reg=1e-300: EASE's Gram matrix .* raise it") as raised:
        EaseTeacher.fit(ds, reg=1e-300)
    assert raised.value.key == "train.teacher_reg"
    with pytest.raises(ConfigError, match=r"train.teacher_user_reg=1e-300: ") as raised:
        EaseTeacher.fit(ds, reg=50.0, user_weight=1.0, user_reg=1e-300)
    assert raised.value.key == "train.teacher_user_reg"


def test_a_teacher_larger_than_the_free_memory_is_refused_before_the_fit(monkeypatch):
    ds = synthetic()
    monkeypatch.setattr(teacher_module, "available_bytes", lambda device: 1000)
    fitted = []
    monkeypatch.setattr(teacher_module, "tune_on_valid", lambda *a, **k: fitted.append(1))
    with pytest.raises(ConfigError, match=r"needs 0.0 GB for 12 items, and this machine has 0.0 GB free; set "
                                          r"model.distill_weight=0") as raised:  # fmt: skip
        EaseTeacher.fit(ds)
    assert raised.value.key == "model.distill_weight" and fitted == []
    assert teacher_module.peak_bytes(1000, 10, tuned=True, user_weight=0, user_tuned=False) == 20 * 1000**2
    assert teacher_module.peak_bytes(10, 1000, tuned=False, user_weight=1, user_tuned=False) == 4 * 100 + 16 * 1000**2
    # user EASE tuned on valid keeps its best fit's (U, I) float32 table, not a (U, U) one (it counted 4 U^2)
    assert teacher_module.peak_bytes(2000, 20000, tuned=False, user_weight=1, user_tuned=True) == (
        4 * 2000**2 + 16 * 20000**2 + 4 * 20000 * 2000
    )
    monkeypatch.setattr(teacher_module, "available_bytes", lambda device: None)  # unknown: no check
    monkeypatch.undo()
    assert EaseTeacher.fit(ds, reg=50.0).weight.shape == (12, 12)
    free = teacher_module.available_bytes("cpu")
    assert free is None or free > 0


def test_prepare_refuses_a_teacher_too_large_before_the_graph_and_the_text(clustered_dataset, monkeypatch):
    """The memory check ran in the teacher's fit, after the graph build and the text encoding
    (minutes on large data); it now runs right after the data is read."""
    import kgrec.train.run as run_module

    class GraphBuilt(Exception):
        pass

    def build_graph(*args, **kwargs):
        raise GraphBuilt

    monkeypatch.setattr(teacher_module, "available_bytes", lambda device: 1000)
    monkeypatch.setattr(run_module, "build_graph", build_graph)
    with pytest.raises(ConfigError, match=r"the EASE teacher needs .* GB free; set model.distill_weight=0"):
        run_module.prepare(tiny_config(clustered_dataset, "model.distill_weight=1.0"), progress=False)
    with pytest.raises(GraphBuilt):  # no teacher: no check, on to the graph
        run_module.prepare(tiny_config(clustered_dataset, "model.distill_weight=0"), progress=False)
