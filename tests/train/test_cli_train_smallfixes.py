"""After `kgrec train`, the hint names `kgrec eval --baselines` only where that command works: it
ranks at K = 10 and 20, and refuses a catalogue of fewer than 20 items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.cli.main import main


def _catalogue(folder: Path, n_items: int) -> Path:
    """30 users rating 6 of ``n_items`` items each, on a 1-5 scale, in time order."""
    rng = np.random.default_rng(0)
    root = folder / "small"
    root.mkdir(parents=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(30):
        for t, i in enumerate(rng.choice(n_items, size=6, replace=False)):
            lines.append(f"u{u}\ti{i}\t{rng.choice([1, 2, 4, 5])}\t{6 * u + t}")
    (root / "small.inter").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize(("n_items", "ks", "hinted"), [(15, "[5,10]", False), (20, "[10,20]", True)])
def test_the_baselines_hint_only_names_a_command_that_works(tmp_path, capsys, n_items, ks, hinted):
    run = tmp_path / "run"
    args = ["train", "--data", str(_catalogue(tmp_path, n_items)), "--out", str(run), "--set", f"eval.ks={ks}",
            "--set", "model.dim=8", "--set", "train.max_epochs=1", "--set", "train.progress=false",
            "--set", "train.accelerator=cpu"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ndcg@10" in out and f"kgrec recommend {run} --user USER_ID" in out
    assert (f"kgrec eval {run} --baselines" in out) is hinted  # was there at 15 items too
    # what the hint names: at 15 items eval --baselines refuses (K = 20 is beyond the catalogue)
    assert main(["eval", str(run), "--baselines", "--json"]) == (0 if hinted else 2)
    if not hinted:
        assert f"--baselines ranks at K = 10 and 20, beyond the {n_items} items" in capsys.readouterr().err
