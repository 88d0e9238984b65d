"""``scripts/train.py``: the same training as ``kgrec train``, defaults fitted to the data included."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from kgrec.cli.main import main
from tests.conftest import TINY_OVERRIDES
from tests.train.test_defaults import CATEGORIES, CLICKS

ROOT = Path(__file__).resolve().parents[2]


def run_script(*options: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/train.py", *map(str, options)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def tiny(*overrides: str) -> list[str]:
    return [part for o in [*TINY_OVERRIDES, "train.max_epochs=1", *overrides] for part in ("--set", o)]


@pytest.fixture
def shop(atomic: Callable[..., Path]) -> Path:
    """Clicks without ratings, items with a category: a dataset the built-in defaults cannot feed as they are."""
    return atomic(name="shop", inter=CLICKS, item=CATEGORIES)


def test_the_script_fits_the_defaults_to_the_data_as_kgrec_train_does(shop: Path, tmp_path: Path, capsys):
    """It stopped with a traceback: "model.tasks has rating, like but shop has no rating column"."""
    done = run_script("--config", "none", "--data", shop, "--out", tmp_path / "script", *tiny())
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("note: shop has no ratings: the rating and like towers are off\n") == 1
    assert main(["train", "--data", str(shop), "--out", str(tmp_path / "cli"), *tiny()]) == 0
    script, cli = (yaml.safe_load((tmp_path / name / "config.yaml").read_text()) for name in ("script", "cli"))
    assert script == cli and script["model"]["tasks"] == ["retrieval", "kg"]


def test_errors_are_one_line(shop: Path, tmp_path: Path):
    done = run_script("--config", "none", "--data", shop, "--out", tmp_path / "r", "--set", "model.trunk=tower")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("train.py: error: model.trunk")


def test_without_config_the_dataset_s_own_is_found_by_name_as_kgrec_train_finds_it(shop: Path, tmp_path: Path, capsys):
    """It took scripts/configs/ml-100k.yaml whatever the data (its EASE teacher, the movie template)."""
    done = run_script("--data", shop, "--out", tmp_path / "r", *tiny())
    assert done.returncode == 0, done.stderr
    said = "config: the built-in defaults (no scripts/configs/ file for this dataset)\n"
    assert done.stderr.startswith(said)  # as kgrec train says it
    assert main(["train", "--data", str(shop), "--out", str(tmp_path / "cli"), *tiny()]) == 0
    assert capsys.readouterr().err.startswith(said)
    script, cli = (yaml.safe_load((tmp_path / name / "config.yaml").read_text()) for name in ("r", "cli"))
    assert script == cli


def test_what_training_refuses_is_refused_before_the_graph_and_text_steps(shop: Path, tmp_path: Path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    done = run_script("--config", "none", "--data", shop, "--out", out, *tiny())
    assert done.returncode == 2 and "holds" in done.stderr.splitlines()[-1], done.stderr
    assert "graph nodes" not in done.stdout  # before: refused by train(), after prepare() built the graph
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_help_names_the_default_config():
    done = run_script("--help")
    assert done.returncode == 0 and "--data DATA" in done.stdout
    assert "YAML config (default: the dataset's scripts/configs/NAME.yaml, found by its name" in " ".join(done.stdout.split())
