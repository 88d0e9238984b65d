"""Random search spaces (kgrec.train.space) and kgrec tune --trials."""

import json
import math

import numpy as np
import pytest

from kgrec.cli.main import main
from kgrec.errors import ConfigError
from kgrec.train.space import Distribution, parse_space, sample_settings
from tests.conftest import TINY_OVERRIDES


def test_draws_stay_in_their_bounds_and_are_rounded_to_two_digits():
    rng = np.random.default_rng(0)
    space = parse_space(["train.lr=loguniform(1e-4, 1e-2)", "model.id_dropout=uniform(0,0.3)", "model.dim=randint(16,18)"])
    lrs = [float(space["train.lr"].draw(rng)) for _ in range(500)]
    assert min(lrs) >= 1e-4 * 0.95 and max(lrs) <= 1e-2 * 1.05
    assert all(float(f"{v:.2g}") == v for v in lrs) and len(set(lrs)) > 50  # two digits, still spread
    small = sum(v < 1e-3 for v in lrs) / len(lrs)  # log-uniform: as many draws below 1e-3 as above
    assert 0.4 < small < 0.6
    dropouts = [float(space["model.id_dropout"].draw(rng)) for _ in range(200)]
    assert min(dropouts) >= 0 and max(dropouts) <= 0.3 and np.mean(dropouts) == pytest.approx(0.15, abs=0.03)
    assert {space["model.dim"].draw(rng) for _ in range(100)} == {"16", "17", "18"}  # both ends included
    assert str(space["train.lr"]) == "loguniform(0.0001,0.01)" and str(space["model.dim"]) == "randint(16,18)"


def test_rounding_never_takes_a_draw_out_of_its_bounds():
    """Two digits would make uniform(0.9,0.999)'s 0.996 a dropout of 1 and loguniform(0.001,0.00149)'s
    0.00148 a rate of 0.0015: such draws keep the digits they need instead."""
    drawn = sample_settings({}, parse_space(["model.id_dropout=uniform(0.9,0.999)"]), 11)
    assert all(0.9 <= float(s["model.id_dropout"]) <= 0.999 for s in drawn)
    assert "0.95" in {s["model.id_dropout"] for s in drawn}  # the rest stay at two digits
    rng = np.random.default_rng(0)
    lr = Distribution("loguniform", 0.001, 0.00149)
    assert all(0.001 <= float(lr.draw(rng)) <= 0.00149 for _ in range(300))


def test_the_same_seed_draws_the_same_distinct_settings_and_more_trials_keep_the_first():
    space = {"train.lr": Distribution("loguniform", 1e-4, 1e-2)}
    choices = {"model.trunk": ["mmoe", "ple"]}
    five = sample_settings(choices, space, 5, seed=3)
    assert five == sample_settings(choices, space, 5, seed=3) != sample_settings(choices, space, 5, seed=4)
    assert len({tuple(s.values()) for s in five}) == 5 and all(list(s) == ["model.trunk", "train.lr"] for s in five)
    assert sample_settings(choices, space, 8, seed=3)[:5] == five


def test_a_space_smaller_than_the_trials_is_refused():
    assert len(sample_settings({"model.trunk": ["mmoe", "ple"]}, {}, 2)) == 2
    with pytest.raises(ConfigError, match="the space holds only 2 distinct settings"):
        sample_settings({"model.trunk": ["mmoe", "ple"]}, {}, 3)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("train.lr=normal(0,1)", "expected section.field=loguniform"),
        ("train.lr=loguniform(0,1)", "loguniform needs LOW > 0"),
        ("train.lr=uniform(1,0.5)", "expected LOW < HIGH"),
        ("train.lr=uniform(a,b)", "the bounds must be numbers"),
        ("model.dim=randint(8,16.5)", "randint needs integer bounds"),
    ],
)
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_space([spec])


def test_cli_random_search_trains_the_drawn_settings_and_reads_them_back(clustered_dataset, tmp_path, capsys):
    out = tmp_path / "random"
    args = ["tune", "--data", str(clustered_dataset), "--trials", "2", "--sample", "train.lr=loguniform(1e-3,1e-2)",
            "--grid", "model.trunk=identity,mmoe", "--out", str(out),
            *(x for o in TINY_OVERRIDES for x in ("--set", o)), "--set", "train.max_epochs=1"]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    saved = json.loads((out / "tune.json").read_text())
    assert saved["random_search"] == {"space": {"train.lr": "loguniform(0.001,0.01)"}, "trials": 2, "seed": 0}
    drawn = [t["setting"] for t in saved["trials"]]
    assert drawn == sample_settings({"model.trunk": ["identity", "mmoe"]}, parse_space(["train.lr=loguniform(1e-3,1e-2)"]), 2)
    assert all(1e-3 <= float(s["train.lr"]) <= 1e-2 and not math.isnan(float(s["train.lr"])) for s in drawn)
    assert main(args) == 0  # the same command: the same draws, read back
    assert capsys.readouterr().out == first


def test_cli_asks_for_trials_with_sampled_fields_and_for_some_field(clustered_dataset, tmp_path, capsys):
    assert main(["tune", "--sample", "train.lr=loguniform(1e-3,1e-2)", "--out", str(tmp_path / "t")]) == 2
    assert "need a number of trials (--trials N)" in capsys.readouterr().err
    assert main(["tune", "--out", str(tmp_path / "t")]) == 2
    assert "give the fields to search" in capsys.readouterr().err
