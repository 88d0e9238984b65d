"""scripts/_bench.py: the benches' runs kept under ``--runs DIR`` are reused, not trained again."""

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import _bench  # noqa: E402


def test_a_kept_run_is_read_back_and_an_interrupted_one_resumes(clustered_dataset, tmp_path, monkeypatch):
    config = tiny_config(clustered_dataset, "train.max_epochs=2")
    first = _bench.train_kept(config, tmp_path)
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith(f"seed{config.train.seed}-")
    assert json.loads((folder / "metrics.json").read_text()) == first

    monkeypatch.setattr(_bench, "train", lambda *args, **kwargs: pytest.fail("trained again"))
    assert _bench.train_kept(tiny_config(clustered_dataset, "train.max_epochs=2"), tmp_path) == first
    monkeypatch.undo()

    other = tiny_config(clustered_dataset, "train.max_epochs=2", "train.seed=1")
    _bench.train_kept(other, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # another seed (or any other setting): another folder

    (folder / "manifest.json").unlink()  # as if killed after its last checkpoint
    again = _bench.train_kept(config, tmp_path)
    assert again["resumed"] is True
    assert again["test"] == pytest.approx(first["test"])


def test_bench_linkpred_prints_every_row_against_relation_popularity(clustered_dataset, tmp_path):
    import subprocess

    from tests.conftest import TINY_OVERRIDES

    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_linkpred.py"
    sets = [x for o in [f"data.path={clustered_dataset}", *TINY_OVERRIDES] for x in ("--set", o)]
    out = subprocess.run([sys.executable, str(script), "--holdout", "0.2", "--epochs", "2", *sets],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout  # fmt: skip
    rows = {line[:40].strip(): line[40:].split() for line in out.splitlines() if line[40:].split()}
    for name in ("relation popularity", "random", "kg tower, softplus (sampled tail)", "kg tower, softmax (every node)"):
        assert len(rows[name]) == 5 and 0 <= float(rows[name][0]) <= 1
    assert rows["relation popularity"][4] == "1.000"
