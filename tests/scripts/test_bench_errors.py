"""Bad input to the benches that train nothing (eval, explain, graph, loader, retrieval, serve,
similar, startup) is one line with exit status 2, as ``kgrec`` tells it: a count of 0, a run
folder that is not a finished run, a folder that is not a dataset, a run trained without the
retrieval tower. Each of these was a Python traceback (or a table of nothing, or a silent skip)."""

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgrec.train.run import RUN_FORMAT
from tests.scripts.test_bench_ux import parse
from tests.scripts.test_benches import SCRIPTS


def run(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "KGREC_HOME": str(cwd / "kgrec-home")}, timeout=120)  # fmt: skip


def assert_one_line(done: subprocess.CompletedProcess, name: str, *said: str) -> None:
    """Status 2, no traceback, and stderr's last line is ``NAME: error: ...`` saying each of ``said``."""
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert last.startswith(f"{name}: error: ") and all(s in last for s in said), done.stderr[-3000:]


@pytest.fixture(scope="module")
def run_without_vectors(tmp_path_factory) -> Path:
    """A finished run whose folder lost its ``vectors.safetensors`` (its config keeps the default
    ``model.tasks``, retrieval included), so there is nothing to query. Only the files the benches
    read before they open it are written."""
    folder = tmp_path_factory.mktemp("runs") / "no-vectors"
    folder.mkdir()
    manifest = {"format": "kgrec-run", "format_version": RUN_FORMAT, "dataset_path": str(folder), "files": []}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "id_maps.json").write_text(json.dumps({"users": ["u0"], "items": ["i0"]}))
    (folder / "config.yaml").write_text("model:\n  use_text: false\n")
    return folder


@pytest.mark.parametrize(("name", "args", "said"), [
    ("bench_eval.py", ["--dim", "0"], "argument --dim: must be at least 1, got 0"),
    ("bench_eval.py", ["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    ("bench_explain.py", ["RUN", "--anchors", "0"], "argument --anchors: must be at least 1, got 0"),
    ("bench_explain.py", ["RUN", "-k", "0"], "argument -k: must be at least 1, got 0"),
    ("bench_loader.py", ["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    ("bench_retrieval.py", ["--sizes", "10000,abc"], "argument --sizes: expected whole numbers, comma-separated"),
    ("bench_retrieval.py", ["--sizes", "5"], "argument --sizes: each must be at least 10"),
    ("bench_retrieval.py", ["--dims", "8"], "argument --dims: each must be at least 16"),
    ("bench_retrieval.py", ["--kinds", "hnws"], "argument --kinds: hnws: expected hnsw or ivfpq"),
    ("bench_retrieval.py", ["--queries", "0"], "argument --queries: must be at least 1, got 0"),
    ("bench_serve.py", ["RUN", "--concurrency", "0"], "argument --concurrency: must be at least 1, got 0"),
    ("bench_serve.py", ["RUN", "--seconds", "0"], "argument --seconds: must be more than 0, got 0"),
    ("bench_similar.py", ["RUN", "-k", "0"], "argument -k: must be at least 1, got 0"),
    ("bench_similar.py", ["RUN", "--per-user", "0"], "argument --per-user: must be at least 1, got 0"),
])  # fmt: skip
def test_a_count_the_bench_cannot_use_is_refused_by_the_parser(name, args, said):
    """Each was a traceback (a batch of 0 rows, ``int('abc')``, a top 10 of 5 items, an empty
    percentile), a table of nothing (``--dim 0``) or, for ``--kinds``, skipped in silence."""
    code, err = parse(name, *args)
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"{name}: error: {said}"), err


def test_a_path_that_is_not_a_finished_run_is_refused_in_kgrecs_words(tmp_path, monkeypatch):
    """``_bench.check_runs``, which explain, similar, serve, startup and retrieval (``--run``) call
    right after parsing, not as an argparse type: the README's commands name runs that exist only
    where they were trained."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import _bench

    (tmp_path / "notes").mkdir()
    parser = argparse.ArgumentParser(prog="bench_x.py")
    for folder, said in (("nowhere", "not a finished kgrec run (no such folder)"),
                         ("notes", "not a finished kgrec run (no manifest.json)")):  # fmt: skip
        with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as stop:
            _bench.check_runs(parser, tmp_path / folder)
        assert stop.value.code == 2, err.getvalue()
        assert err.getvalue().splitlines()[-1].startswith(f"bench_x.py: error: {tmp_path / folder}: {said}"), err.getvalue()


@pytest.mark.parametrize("name", ["bench_serve.py", "bench_startup.py"])
def test_a_run_folder_that_does_not_exist_stops_the_bench_in_one_line(name, tmp_path):
    done = run(name, "runs/mistyped", cwd=tmp_path)  # was FileNotFoundError: runs/mistyped/id_maps.json
    assert_one_line(done, name, "runs/mistyped: not a finished kgrec run (no such folder)")


@pytest.mark.parametrize(("name", "args"), [
    ("bench_explain.py", []), ("bench_similar.py", []), ("bench_serve.py", ["--in-process"]),
    ("bench_startup.py", ["--repeats", "1"]),  # kgrec recommend said it; the bench raised CalledProcessError
])  # fmt: skip
def test_a_run_that_lost_its_vectors_is_one_line(name, args, run_without_vectors, tmp_path):
    done = run(name, str(run_without_vectors), *args, cwd=tmp_path)
    assert_one_line(done, name, f"{run_without_vectors}: no vectors.safetensors", "restore the file or retrain")


def test_bench_retrieval_refuses_a_run_without_vectors_before_timing_anything(run_without_vectors, tmp_path):
    done = run("bench_retrieval.py", "--quick", "--threads", "1", "--run", str(run_without_vectors), cwd=tmp_path)
    assert_one_line(done, "bench_retrieval.py", f"{run_without_vectors}: no vectors.safetensors")
    assert done.stdout == ""  # was a traceback from safetensors after the GEMM ceiling and every table


def test_bench_eval_says_a_folder_is_not_a_dataset(tmp_path):
    (tmp_path / "notes").mkdir()
    done = run("bench_eval.py", "--data", str(tmp_path / "notes"), cwd=tmp_path)
    assert_one_line(done, "bench_eval.py", f"{tmp_path / 'notes'}: no interactions: expected notes.inter")
    done = run("bench_eval.py", "--data", "data/mistyped", cwd=tmp_path)  # before loading anything
    assert_one_line(done, "bench_eval.py", "--data data/mistyped: no such folder")


def test_bench_graph_refuses_a_dataset_too_small_for_its_recipe(tmp_path):
    """The child process measured says it (a ConfigError there, reported with its traceback); the
    bench tells it in one line. ``--triples 0`` was the same with an empty .kg."""
    done = run("bench_graph.py", "--triples", "0", cwd=tmp_path)
    assert_one_line(done, "bench_graph.py", "argument --triples: must be at least 1, got 0")
    done = run("bench_graph.py", "--triples", "5", "--items", "1", cwd=tmp_path)
    assert_one_line(done, "bench_graph.py", "the kgrec child, on the synthetic dataset: ", "min_degree 2 dropped all")


def test_bench_serve_passes_on_the_status_of_a_server_that_refused_to_start(run_without_vectors, tmp_path):
    done = run("bench_serve.py", str(run_without_vectors), "--seconds", "1", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]  # it was 1
    assert "no vectors.safetensors" in done.stderr and "server did not start" not in done.stderr, done.stderr[-3000:]
