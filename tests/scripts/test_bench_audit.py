"""Audit of the benches behind the README's figures: each test pins a bug found in what a bench
computed or read back, and fails on the code before its fix."""

import json
import os
import subprocess
import sys
from pathlib import Path

from kgrec.utils.io import sha256_file
from tests.scripts.test_benches import SCRIPTS, markdown_rows


def test_bench_warm_start_does_not_read_back_last_weeks_run_of_another_keep(warm_start_runs):
    """Last week's data is cut by ``--keep``, which no config field records: under the same
    ``--runs DIR`` a second ``--keep`` must train last week (and the warm runs) anew, not read
    back the run of the first one's data."""
    # --budget 1 under one --runs DIR: --keep 0.8 (then again, read back), then --keep 0.5
    runs, first, second = warm_start_runs.runs, warm_start_runs.first, warm_start_runs.second

    def last_week_run(out: str) -> Path:
        return Path(out.split("the warm runs' config: init_from: ")[1].split()[0])

    assert last_week_run(first) != last_week_run(second)
    # the run the second table reads was trained on the last week that --keep 0.5 cut
    data = runs / "data" / "last-week" / "clusters"
    trained_rows = (data / "clusters.inter").read_text().count("\n") - 1
    assert f"last week: {trained_rows:,} interactions" in second
    manifest = json.loads((last_week_run(second) / "manifest.json").read_text())
    recorded = {r["file"]: r["sha256"] for r in manifest["sources"]}
    assert recorded["clusters.inter"] == sha256_file(data / "clusters.inter")
    # this week's fresh runs do not depend on --keep: read back, the same figures
    assert markdown_rows(first, "| run |")["this week, fresh start"] == markdown_rows(second, "| run |")["this week, fresh start"]


def test_bench_coldstart_does_not_reuse_a_run_trained_with_another_config(coldstart_runs):
    """``--out`` keeps one trained run that later invocations read back; one asked with other
    ``--set`` values (here fewer epochs) must not be answered with that run's figures."""
    args, env, cwd = coldstart_runs.args, coldstart_runs.env, coldstart_runs.folder  # the run is trained, then reused
    assert "reusing the trained run" in coldstart_runs.again  # the same config
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_coldstart.py"), *args, "--set", "train.max_epochs=1"],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, **env})  # fmt: skip
    assert "reusing the trained run" not in done.stdout
    assert done.returncode != 0 and "train.max_epochs" in done.stderr and "another --out" in done.stderr
