"""The benches' command lines: every option explained in ``--help``, and input they cannot use
(a count of 0, a mistyped ``--config``, a dataset without the columns they read, a ``--json``
in a new folder) answered in one line, not a traceback after minutes of work."""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts.test_benches import SCRIPTS, tiny_sets
from tests.test_readme import script_parser

BENCHES = sorted(p.name for p in SCRIPTS.glob("bench_*.py"))


def run(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "KGREC_HOME": str(cwd / "kgrec-home")})  # fmt: skip


def parse(name: str, *args: str) -> tuple[int, str]:
    """What ``name``'s own argument parser does with ``args``, in this process (the bench runs up
    to its ``parse_args``, nothing after): the exit status (0 when it parses) and stderr."""
    parser = script_parser(SCRIPTS / name)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            parser.parse_args(list(args))
        except SystemExit as exit_:
            return int(exit_.code or 0), err.getvalue()
    return 0, err.getvalue()


def test_every_bench_option_has_help():
    for name in BENCHES:
        parser = script_parser(SCRIPTS / name)
        unexplained = [a.option_strings or a.dest for a in parser._actions if not a.help]
        assert unexplained == [], f"{name}: {unexplained} have no help"


@pytest.mark.parametrize(("name", "args"), [
    ("bench_quality.py", ["--seeds", "0"]), ("bench_ablation.py", ["--seeds", "0"]),
    ("bench_linkpred.py", ["--seeds", "0"]), ("bench_splits.py", ["--splits", "0"]),
    ("bench_graph_encoder.py", ["--steps", "0"]), ("bench_train_step.py", ["--steps", "0"]),
    ("bench_deterministic.py", ["--runs", "0"]), ("bench_deterministic.py", ["--epochs", "0"]),
])  # fmt: skip
def test_a_count_below_one_is_refused_by_the_parser(name, args):
    code, err = parse(name, *args)
    assert code == 2 and "must be at least 1, got 0" in err, err


@pytest.mark.parametrize(("name", "args"), [
    ("bench_eval.py", ["--repeats", "0"]), ("bench_loader.py", ["--quick", "--repeats", "0"]),
    ("bench_startup.py", ["no-run", "--repeats", "0"]),
])  # fmt: skip
def test_a_count_below_one_is_refused_before_any_work(name, args, tmp_path):
    done = run(name, *args, cwd=tmp_path)  # checked after parsing: the bench itself must stop
    assert done.returncode == 2 and "at least 1" in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("name", ["bench_ablation.py", "bench_coldstart.py", "bench_ctr.py", "bench_deterministic.py", "bench_graph_encoder.py", "bench_linear.py",
                                  "bench_linkpred.py", "bench_newusers.py", "bench_quality.py", "bench_rerank.py",
                                  "bench_splits.py", "bench_train_step.py", "bench_warm_start.py"])  # fmt: skip
def test_a_mistyped_config_path_stops_the_bench_in_one_line(name):
    code, err = parse(name, "--config", "no-such.yaml")  # bench_coldstart and bench_newusers used the defaults
    assert code == 2 and "no-such.yaml: no such config file" in err, err


def test_bench_newusers_refuses_a_fold_that_does_not_exist(tmp_path):
    done = run("bench_newusers.py", "--folds", "4", "--only", "4", cwd=tmp_path)
    assert done.returncode == 2 and "folds are numbered 0 to 3" in done.stderr, done.stderr[-2000:]


def test_json_output_goes_into_a_new_folder(clustered_dataset, tmp_path):
    done = run("bench_quality.py", "--skip-kgrec", "--skip-bpr", "--json", "new/rows.json", *tiny_sets(clustered_dataset),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "most-popular" in json.loads((tmp_path / "new" / "rows.json").read_text())
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["rows.json"]  # no temporary file left beside it
    done = run("bench_retrieval.py", "--quick", "--threads", "1", "--json", "new2/rows.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "new2" / "rows.json").read_text())["rows"]


@pytest.mark.parametrize("drop", ["timestamp", "rating"])
def test_linear_and_rerank_say_which_column_the_data_lacks(clustered_dataset, tmp_path, drop):
    data = tmp_path / "data" / "plain"
    data.mkdir(parents=True)
    for file in clustered_dataset.iterdir():
        (data / f"plain{file.suffix}").write_text(file.read_text())
    lines = [line.split("\t") for line in (data / "plain.inter").read_text().splitlines()]
    keep = [i for i, head in enumerate(lines[0]) if not head.startswith(f"{drop}:")]
    (data / "plain.inter").write_text("\n".join("\t".join(row[i] for i in keep) for row in lines) + "\n")
    sets = tiny_sets(data, "train.teacher_session_hours=null", "train.teacher_recency_hours=null")
    for name in ("bench_linear.py", "bench_rerank.py"):
        done = run(name, *sets, cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert done.stderr.startswith(f"plain has no {drop} column: this bench needs both") and done.stderr.count("\n") == 1


def test_bad_input_found_while_running_is_one_line(clustered_dataset, tmp_path):
    """A config the data cannot feed (the ml-100k teacher's session weights on interactions
    without timestamps) was a ConfigError traceback; the benches now tell it as kgrec does."""
    data = tmp_path / "data" / "plain"
    data.mkdir(parents=True)
    for file in clustered_dataset.iterdir():
        (data / f"plain{file.suffix}").write_text(file.read_text())
    lines = [line.split("\t") for line in (data / "plain.inter").read_text().splitlines()]
    keep = [i for i, head in enumerate(lines[0]) if not head.startswith("timestamp:")]
    (data / "plain.inter").write_text("\n".join("\t".join(row[i] for i in keep) for row in lines) + "\n")
    done = run("bench_quality.py", "--skip-kgrec", "--skip-bpr", "--seeds", "1", *tiny_sets(data), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == (
        "bench_quality.py: error: train.teacher_session_hours: the training interactions have no timestamps; "
        "set it to null\n"
    ), done.stderr[-2000:]


def test_bench_warm_start_refuses_a_share_it_cannot_cut(tmp_path):
    done = run("bench_warm_start.py", "--keep", "1", cwd=tmp_path)
    assert done.returncode == 2 and "--keep: expected a share between 0 and 1, got 1.0" in done.stderr, done.stderr[-2000:]
