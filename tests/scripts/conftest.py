"""Bench runs that two test modules read: trained once per session, each test checking its part."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.scripts.test_benches import run_script, tiny_sets


@pytest.fixture(scope="session")
def warm_start_runs(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``bench_warm_start.py --budget 1`` three times under one ``--runs`` folder, in ``folder``:
    ``first`` (``--keep 0.8 --plot curves/warm.png``: every run trained), ``again`` (the same
    ``--keep`` without the plot: every run read back) and ``second`` (``--keep 0.5``: last week and
    the warm runs trained anew, this week's fresh runs read back). The data folder the first two
    wrote is copied to ``first_data`` before ``second`` writes its own (``runs / "data"``)."""
    folder = tmp_path_factory.mktemp("warm-start")
    runs = folder / "runs"
    common = ["--budget", "1", "--runs", str(runs), *tiny_sets(clustered_dataset)]
    first = run_script("bench_warm_start.py", "--keep", "0.8", *common, "--plot", "curves/warm.png", cwd=folder)
    again = run_script("bench_warm_start.py", "--keep", "0.8", *common, cwd=folder)
    first_data = Path(shutil.copytree(runs / "data", folder / "data-keep-0.8"))
    second = run_script("bench_warm_start.py", "--keep", "0.5", *common, cwd=folder)
    return SimpleNamespace(folder=folder, runs=runs, first=first, again=again, first_data=first_data, second=second)


@pytest.fixture(scope="session")
def coldstart_runs(clustered_dataset: Path, tiny_models: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``bench_coldstart.py ARGS`` (with text, 40% of the items held out) twice with one ``--out``:
    ``first`` trains the run, ``again`` reuses it. ``env`` gives the scripts a text cache of their
    own (``KGREC_HOME``), so that their encodings do not touch the user's; ``folder``: their cwd."""
    folder = tmp_path_factory.mktemp("coldstart")
    env = {"KGREC_HOME": str(tmp_path_factory.mktemp("kgrec-home"))}
    text = ["model.use_text=true", f"text.model={tiny_models[0]}", "data.cold_item_share=0.4"]
    args = ["--out", str(folder / "cold"), "--threads", "1", *tiny_sets(clustered_dataset, *text)]
    first = run_script("bench_coldstart.py", *args, cwd=folder, env=env)
    again = run_script("bench_coldstart.py", *args, cwd=folder, env=env)
    return SimpleNamespace(folder=folder, args=args, env=env, first=first, again=again)
