"""Audit of the benches behind the README's figures: each test pins a bug found in what a bench
computed or read back, and fails on the code before its fix."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgrec.utils.io import sha256_file
from tests.scripts.test_benches import SCRIPTS, markdown_rows, run_script, tiny_sets


@pytest.fixture(scope="module")
def text_env(tiny_models, tmp_path_factory) -> dict[str, str]:
    """A text cache of its own, so that the scripts' encodings do not touch the user's."""
    return {"KGREC_HOME": str(tmp_path_factory.mktemp("kgrec-home"))}


def test_bench_warm_start_does_not_read_back_last_weeks_run_of_another_keep(clustered_dataset, tmp_path):
    """Last week's data is cut by ``--keep``, which no config field records: under the same
    ``--runs DIR`` a second ``--keep`` must train last week (and the warm runs) anew, not read
    back the run of the first one's data."""
    runs = tmp_path / "runs"
    common = ["--budget", "1", "--runs", str(runs), *tiny_sets(clustered_dataset)]
    first = run_script("bench_warm_start.py", "--keep", "0.8", *common, cwd=tmp_path)
    second = run_script("bench_warm_start.py", "--keep", "0.5", *common, cwd=tmp_path)

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


def test_bench_coldstart_does_not_reuse_a_run_trained_with_another_config(clustered_dataset, tmp_path, tiny_models, text_env):
    """``--out`` keeps one trained run that later invocations read back; one asked with other
    ``--set`` values (here fewer epochs) must not be answered with that run's figures."""
    text = ["model.use_text=true", f"text.model={tiny_models[0]}", "data.cold_item_share=0.4"]
    args = ["--out", str(tmp_path / "cold"), "--threads", "1", *tiny_sets(clustered_dataset, *text)]
    run_script("bench_coldstart.py", *args, cwd=tmp_path, env=text_env)
    assert "reusing the trained run" in run_script("bench_coldstart.py", *args, cwd=tmp_path, env=text_env)  # the same config
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_coldstart.py"), *args, "--set", "train.max_epochs=1"],
                          capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **text_env})  # fmt: skip
    assert "reusing the trained run" not in done.stdout
    assert done.returncode != 0 and "train.max_epochs" in done.stderr and "another --out" in done.stderr
