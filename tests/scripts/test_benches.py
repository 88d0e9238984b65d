"""The benches behind the README's figures run end to end on a tiny dataset and print whole tables.

Each script runs as a user runs it (``python scripts/NAME``, with ``--set`` overrides of
ml-100k.yaml: see :func:`run_script`, in this process unless a test needs a fresh one) on the
clustered dataset of ``tests/conftest.py``. What is checked is that every row comes out,
that the numbers are what they claim to be (metrics in [0, 1], a baseline at x1.00, means that
are the means of the printed values), and, where the data makes it certain, which model wins:
the figures themselves come from the full data, in the README.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import TINY_OVERRIDES, tiny_config

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run_script(name: str, *args: str, cwd: Path, env: dict[str, str] | None = None, fresh: bool = False) -> str:
    """stdout of ``python scripts/NAME ARGS`` run in ``cwd`` with ``env`` added to the environment
    (fails the test with its stderr if it fails).

    With ``fresh`` the command runs as a subprocess; else in this process, as that command runs
    the script (as ``__main__``, its folder first on ``sys.path``, ``sys.argv`` its command line),
    sparing each bench the imports a fresh Python pays (torch, PyG, Lightning: 5 to 10 s on 2
    cores). What a script changes of this process (the working folder, the environment, torch's
    and FAISS's threads, ``sys.excepthook``, torch's random state) is put back after it. Every
    bench also starts as a subprocess in ``test_bench_ux.py`` and ``test_bench_errors.py``."""
    if fresh:
        done = subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True,
                              cwd=cwd, env={**os.environ, **(env or {})})  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
        return done.stdout
    import contextlib
    import io
    import runpy

    import faiss
    import torch

    out, err = io.StringIO(), io.StringIO()
    environ, hook, threads, faiss_threads = dict(os.environ), sys.excepthook, torch.get_num_threads(), faiss.omp_get_max_threads()
    with pytest.MonkeyPatch.context() as patch, torch.random.fork_rng(devices=[]):
        patch.chdir(cwd)
        patch.syspath_prepend(str(SCRIPTS))
        patch.setattr(sys, "argv", [str(SCRIPTS / name), *args])
        os.environ.update(env or {})
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                runpy.run_path(str(SCRIPTS / name), run_name="__main__")
        except SystemExit as exit_:
            assert exit_.code in (None, 0), f"{name} exited with {exit_.code!r}: {err.getvalue()[-4000:]}"
        except BaseException:
            print(err.getvalue()[-4000:], file=sys.stderr)  # shown with the failure
            raise
        finally:
            os.environ.clear()
            os.environ.update(environ)
            sys.excepthook = hook
            torch.set_num_threads(threads)
            faiss.omp_set_num_threads(faiss_threads)
    return out.getvalue()


def tiny_sets(data: Path, *overrides: str) -> list[str]:
    """``--set`` arguments for the tiny test config on ``data``."""
    return [x for o in [f"data.path={data}", *TINY_OVERRIDES, *overrides] for x in ("--set", o)]


def fixed_width_rows(out: str, header: str, width: int = 42) -> dict[str, list[str]]:
    """The rows under the line starting with ``header`` of a fixed-width table: name -> cells
    (the table ends at the first line whose last two cells are not numbers or ``-``)."""

    def number(cell: str) -> bool:
        return cell == "-" or cell.removeprefix("x").replace(".", "", 1).isdigit()

    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 1 :]:
        if line.startswith("---"):
            continue
        cells = line[width:].split()
        if len(cells) < 2 or not all(number(c) for c in cells[-2:]):
            break
        rows[line[:width].strip()] = cells
    return rows


def markdown_rows(out: str, header: str) -> dict[str, list[str]]:
    """The rows of the markdown table whose header starts with ``header``: first cell -> the rest."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def text_env(tiny_models, tmp_path_factory) -> dict[str, str]:
    """A text cache of its own, so that the scripts' encodings do not touch the user's."""
    return {"KGREC_HOME": str(tmp_path_factory.mktemp("kgrec-home"))}


def test_bench_quality_prints_every_model_and_writes_the_same_numbers_to_json(clustered_dataset, tmp_path):
    out = run_script("bench_quality.py", "--seeds", "1", "--bpr-lr", "0.005", "--bpr-wd", "0", "--json", "rows.json",
                     *tiny_sets(clustered_dataset), cwd=tmp_path)  # fmt: skip
    rows = fixed_width_rows(out, "model")
    names = list(rows)
    assert names[0] == "most-popular" and names[1].startswith("EASE (lambda=") and names[-1] == "kgrec (ml-100k.yaml)"
    assert any(n.startswith("BPR-MF (lr=0.005, L2=0") for n in names)
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert list(saved) == names
    for name, cells in rows.items():
        assert float(cells[0]) == pytest.approx(saved[name]["ndcg@10"], abs=5e-5)
        assert 0 <= saved[name]["ndcg@10"] <= 1 and 0 <= saved[name]["recall@20"] <= 1
    # users like their own cluster: every learned model is far ahead of popularity here
    for name in names[1:]:
        assert saved[name]["ndcg@10"] > saved["most-popular"]["ndcg@10"] + 0.05, name
    ratio = saved[names[-1]]["ndcg@10"] / saved[names[1]]["ndcg@10"]
    assert f"kgrec / EASE: ndcg@10 x{ratio:.3f}" in out


def test_bench_splits_prints_each_split_and_their_mean(clustered_dataset, tmp_path):
    out = run_script("bench_splits.py", "--splits", "2", *tiny_sets(clustered_dataset), cwd=tmp_path)
    rows = markdown_rows(out, "| model |")
    assert list(rows) == ["most-popular", "EASE (valid-tuned)", "kgrec"]
    for per_split, spread in ((rows[n][0], rows[n][2]) for n in rows):
        values = [float(v) for v in per_split.split(" / ")]
        assert len(values) == 2 and len(set(values)) == 2  # two splits, two different test sets
        assert float(spread.split(" ± ")[0]) == pytest.approx(np.mean(values), abs=1e-4)
    assert "config ml-100k.yaml" in out


def test_bench_ablation_runs_the_chosen_variants_beside_the_full_model(clustered_dataset, tmp_path, tiny_models, text_env):
    text = ["model.use_text=true", f"text.model={tiny_models[0]}"]
    out = run_script("bench_ablation.py", "--seeds", "1", "--variants", "no text", "no graph",
                     *tiny_sets(clustered_dataset, *text), cwd=tmp_path, env=text_env)  # fmt: skip
    rows = markdown_rows(out, "| variant |")
    assert list(rows) == ["full (text + graph + ID)", "no text", "no graph"]
    assert rows["full (text + graph + ID)"][5] == "x1.000"
    for name, cells in rows.items():
        assert 0 <= float(cells[1]) <= 1, name  # test ndcg@10
    # the ratio column is each variant's test NDCG@10 over the full model's
    full = float(rows["full (text + graph + ID)"][1])
    assert float(rows["no text"][5][1:]) == pytest.approx(float(rows["no text"][1]) / full, abs=2e-3)

    out = run_script("bench_ablation.py", "--study", "design", "--seeds", "1", "--variants", "trunk: PLE",
                     *tiny_sets(clustered_dataset), cwd=tmp_path)  # fmt: skip
    assert list(markdown_rows(out, "| variant |")) == ["full (config as it is)", "trunk: PLE"]


def test_bench_warm_start_trains_last_week_then_this_week_fresh_and_warm(warm_start_runs):
    # --keep 0.8 --budget 1 --plot curves/warm.png, then the same again under the same --runs
    out, cwd = warm_start_runs.first, warm_start_runs.folder
    assert (cwd / "curves" / "warm.png").read_bytes().startswith(b"\x89PNG")
    rows = markdown_rows(out, "| run |")
    assert list(rows) == ["last week, fresh start", "this week, fresh start", "this week, warm start",
                          "this week, fresh start, 1 epochs", "this week, warm start, 1 epochs"]  # fmt: skip
    fresh, warm = rows["this week, fresh start"], rows["this week, warm start"]
    assert fresh[6:] == ["x1.00", "x1.000"] and rows["this week, warm start, 1 epochs"][0] == "1"
    assert float(warm[7][1:]) == pytest.approx(float(warm[4]) / float(fresh[4]), abs=2e-3)  # test ndcg@10 ratio
    source = Path(out.split("the warm runs' config: init_from: ")[1].split()[0])
    assert "last-week" in yaml.safe_load((source / "config.yaml").read_text())["data"]["path"]
    # last week is the earliest 80% of this week's training interactions, none of its valid or test
    data = warm_start_runs.first_data  # runs/data as the --keep 0.8 runs wrote it
    week = {tuple(line.split("\t")[:2]) for part in ("valid", "test")
            for line in (data / "this-week" / "clusters" / f"clusters.{part}.inter").read_text().splitlines()[1:]}  # fmt: skip
    last = [tuple(line.split("\t")[:2]) for line in (data / "last-week" / "clusters" / "clusters.inter").read_text().splitlines()[1:]]
    n_train = len((data / "this-week" / "clusters" / "clusters.train.inter").read_text().splitlines()) - 1
    assert not week & set(last) and len(last) == pytest.approx(0.8 * n_train, abs=2)
    again = warm_start_runs.again  # --runs: the finished runs are read back
    assert markdown_rows(again, "| run |") == rows


def test_bench_linear_and_bench_rerank_choose_on_valid_and_print_every_row(clustered_dataset, tmp_path):
    sets = tiny_sets(clustered_dataset)  # with ml-100k.yaml's teacher: session-weighted EASE + user EASE
    out = run_script("bench_linear.py", *sets, cwd=tmp_path)
    rows = fixed_width_rows(out, "model", width=38)
    for name in ("EASE", "EDLAE", "user EASE", "GF-CF", "ItemKNN (cosine)", "RP3beta", "Mult-VAE (seed 0)",
                 "inf-AE (ReLU NTK)", "session EASE (m=1, the teacher's)", "rating-aware EASE (ratings as rows)",
                 "EASE, recency-weighted history"):  # fmt: skip
        assert name in rows
    for name, cells in rows.items():
        assert all(0 <= float(c) <= 1 for c in cells[-5:]), name  # valid ndcg@10 and four test metrics
    assert rows["EASE"][0].startswith("l2=")

    out = run_script("bench_rerank.py", "--epochs", "2", "--candidates", "20", *sets, cwd=tmp_path)
    assert "side signals: genres\n" in out  # the clustered data has genres, no year, no user features
    rows = fixed_width_rows(out, "reranker of the teacher", width=40)
    assert list(rows) == ["teacher (top-N order)", "reranker, train holdout", "reranker, valid labels (diagnostic)"]
    out = run_script("bench_quality.py", "--skip-kgrec", "--skip-bpr", *sets, cwd=tmp_path)
    quality = fixed_width_rows(out, "model")
    assert rows["teacher (top-N order)"][2] == quality["teacher (1h-session EASE + user EASE)"][0]  # the same teacher
    assert re.search(r"\n  teacher: session-weighted \(1 h\) EASE .*: valid ndcg@10 0\.\d{4}\n", out)


def test_bench_coldstart_adds_the_held_out_items_and_ranks_them(coldstart_runs):
    out = coldstart_runs.first  # with text, data.cold_item_share=0.4
    assert "held out 24 items" in out
    rows = markdown_rows(out, "| method |")
    assert len(rows) == 6 and "random (mean of 100 shuffles)" in rows
    for name, cells in rows.items():
        assert all(0 <= float(c.strip("*")) <= 1 for c in cells), name
    similar = markdown_rows(out, "| method | valid overlap@10 |")  # items like a new item
    # the served row is Recommender.similar itself, which the script checks against its own blend
    from kgrec.retrieval.recommender import NEW_ITEM_SIMILAR_MODEL_WEIGHT

    assert any(name.startswith(f"kgrec similar (as served: blend {NEW_ITEM_SIMILAR_MODEL_WEIGHT})") for name in similar)
    assert len(similar) == 8 and "text-encoder cosine" in similar and "most popular" in similar
    assert re.search(r"blend weight on valid .*: 0\.0: .*, 0\.25: .*, 1\.0: ", out)
    for name, cells in similar.items():
        assert all(0 <= float(c) <= 1 for c in cells[:5]), name
    new_users = markdown_rows(out, "| query | Recall@20 |")  # a new user who liked one added item
    assert len(new_users) == 3 and "most popular (training counts)" in new_users
    assert all(0 <= float(c) <= 1 for cells in new_users.values() for c in cells)
    assert re.search(r"a new user who liked one added item: \d+ \(user, liked held-out item\) pairs", out)
    assert "reusing the trained run" in coldstart_runs.again  # the same command again


def test_bench_newusers_trains_without_a_fold_of_users_and_ranks_for_them(clustered_dataset, tmp_path):
    args = ["--out", str(tmp_path / "new"), "--folds", "4", "--only", "1", "--threads", "1", *tiny_sets(clustered_dataset)]
    out = run_script("bench_newusers.py", *args, cwd=tmp_path)
    assert "fold 1: 10 new users, 100 given and 30 target interactions" in out  # 13 interactions each, 80% given
    assert "recommend --liked is the row 'kgrec, history pathway, plain mean'" in out  # k = 0 chosen on this dataset's valid split
    rows = markdown_rows(out, "| method | NDCG@10 |")
    assert len(rows) == 6 and "EASE refit with the given items (retraining)" in rows
    for name, cells in rows.items():
        assert all(0 <= float(c) <= 1 for c in cells[:3]), name
    ease = next(cells for name, cells in rows.items() if name.startswith("EASE (lambda="))
    assert float(ease[0]) > float(rows["most-popular"][0])  # a new user's clusters are found from their items
    few = markdown_rows(out, "| method | n = 1 |")
    assert list(few) == ["kgrec, plain mean", "kgrec, with the prior", "EASE", "most-popular"]
    assert all(len(c) == 4 for c in few.values())
    assert "fold 1: reusing" in run_script("bench_newusers.py", *args, cwd=tmp_path)


def test_speed_benches_print_their_baseline_at_one(clustered_dataset, tmp_path):
    out = run_script("bench_graph_encoder.py", "--steps", "1", *tiny_sets(clustered_dataset), cwd=tmp_path)
    assert fixed_width_rows(out, "encoder", width=32)["PyG RGCNConv (baseline)"][-1] == "x1.00"
    out = run_script("bench_train_step.py", "--steps", "1", "--config", str(SCRIPTS / "configs" / "ml-100k.yaml"),
                     *tiny_sets(clustered_dataset), cwd=tmp_path)  # fmt: skip
    assert "x1.00" in out.split("\n\n")[-1] and "min/epoch" in out
    out = run_script("bench_graph.py", "--quick", cwd=tmp_path)
    assert "ratio kgrec / pandas:" in out and "graph: " in out
    out = run_script("bench_loader.py", "--quick", "--repeats", "1", cwd=tmp_path)
    assert fixed_width_rows(out, "training rows", width=22)["quick (20,000)"][-1].startswith("x")
    out = run_script("bench_eval.py", "--data", str(clustered_dataset), "--repeats", "1", cwd=tmp_path)
    assert "evaluate_split (valid)" in out
    out = run_script("bench_retrieval.py", "--quick", "--threads", "1", cwd=tmp_path)
    table = [line.split("|") for line in out.splitlines() if line.startswith("|")]
    recall = table[0].index(next(c for c in table[0] if "recall" in c))
    exact = [row for row in table if row[5].strip() in ("exact (FAISS IP)", "matmul + top-k")]
    assert len(exact) == 3 and all(row[recall].strip() == "1.000" for row in exact)  # exact search finds the true top 10


def test_bench_linkpred_prints_every_row_against_relation_popularity(clustered_dataset, tmp_path):
    out = run_script("bench_linkpred.py", "--holdout", "0.2", "--epochs", "2", *tiny_sets(clustered_dataset), cwd=tmp_path)
    rows = {line[:40].strip(): line[40:].split() for line in out.splitlines() if line[40:].split()}
    for name in ("relation popularity", "random", "kg tower, softplus (sampled tail)", "kg tower, softmax (every node)"):
        assert len(rows[name]) == 5 and 0 <= float(rows[name][0]) <= 1
    assert rows["relation popularity"][4] == "1.000"


def labelled_copy(clustered: Path, folder: Path) -> Path:
    """The clustered dataset with a label column: its interactions 1, and for each user six
    items of other clusters they never rated, 0 (impressions without a click)."""
    import shutil

    data = Path(shutil.copytree(clustered, folder / "ctr"))
    for file in data.iterdir():
        file.rename(data / file.name.replace("clusters", "ctr"))
    lines = (data / "ctr.inter").read_text().splitlines()
    rated = {tuple(line.split("\t")[:2]) for line in lines[1:]}
    rows = [f"{lines[0]}\tlabel:float", *(f"{line}\t1" for line in lines[1:])]
    for u in range(40):
        shown = [i for i in range(60) if i % 4 != u % 4 and (f"u{u}", f"i{i}") not in rated][:6]
        rows += [f"u{u}\ti{i}\t1\t{10_000 + 60 * u + i}\t0" for i in shown]
    (data / "ctr.inter").write_text("\n".join(rows) + "\n")
    return data


@pytest.mark.filterwarnings("ignore::kgrec.errors.DataWarning")  # the label-0 note of each load
def test_bench_ctr_scores_the_same_labelled_pairs_with_every_model(clustered_dataset, tiny_models, tmp_path):
    """Book-Crossing's config, whose tasks lack like (the bench adds it, and chooses epochs on AUC)."""
    data = labelled_copy(clustered_dataset, tmp_path)
    text = ["model.use_text=true", f"text.model={tiny_models[0]}"]
    out = run_script("bench_ctr.py", "--config", str(SCRIPTS / "configs" / "bookcrossing.yaml"), "--data", str(data),
                     "--ease-lambda", "10", "100", "--json", "ctr.json", *tiny_sets(data, *text), cwd=tmp_path)  # fmt: skip
    rows = fixed_width_rows(out, "model", width=45)
    saved = json.loads((tmp_path / "ctr.json").read_text())["results"]
    names = list(rows)
    assert names == list(saved) and names[:4] == ["most-popular", "user click rate", "text, the user's clicks",
                                                  "text, the user's clicks minus their shown"]  # fmt: skip
    assert names[4].startswith("EASE (lambda=")
    assert names[5:] == ["kgrec, IDs only", "kgrec (config as it is, like added)"]
    for name, cells in rows.items():
        assert float(cells[1]) == pytest.approx(saved[name]["test"], abs=5e-5) and 0 <= saved[name]["test"] <= 1
        assert float(cells[2]) == pytest.approx(saved[name]["test_se"], abs=5e-5) and 0 < saved[name]["test_se"] < 0.1
    # the shown items are of other clusters than the user's: EASE's co-occurrences tell them apart
    assert saved[names[4]]["test"] > 0.8


def test_teacher_scale_prints_a_row_per_temperature(clustered_dataset, tmp_path):
    out = run_script("teacher_scale.py", "--users", "20", "--temperature", "0.05", "1", *tiny_sets(clustered_dataset),
                     cwd=tmp_path)  # fmt: skip
    rows = markdown_rows(out, "| temperature |")
    assert list(rows) == ["0.05", "1"]
    # a softer softmax spreads the teacher's mass over more items
    assert float(rows["1"][1]) > float(rows["0.05"][1])
    assert all(float(rows[t][1]) <= 60 for t in rows)  # at most the catalogue (60 items)


@pytest.fixture(scope="module")
def tiny_run(clustered_dataset, tmp_path_factory) -> Path:
    from kgrec.train import train

    folder = tmp_path_factory.mktemp("bench-run") / "run"
    train(tiny_config(clustered_dataset), folder)
    return folder


def test_bench_explain_compares_the_two_rules_on_a_kgat_run(clustered_dataset, tiny_run, tmp_path):
    from kgrec.train import train

    train(tiny_config(clustered_dataset, "model.graph_kind=kgat", "train.max_epochs=2"), tmp_path / "kgat")
    out = run_script("bench_explain.py", str(tmp_path / "kgat"), "--anchors", "20", "-k", "5", cwd=tmp_path)
    rows = fixed_width_rows(out, "rule", width=28)
    assert list(rows) == ["least connected (default)", "most attended (KGAT)"]
    assert rows["least connected (default)"][:2] == rows["most attended (KGAT)"][:2]  # same paths found, same naming
    assert 0 <= float(out.split("by the two rules: ")[1].split()[0]) <= 1
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_explain.py"), str(tiny_run)], capture_output=True, text=True)
    assert done.returncode == 2 and "has no KGAT attention" in done.stderr  # an R-GCN run is refused


def test_bench_startup_times_each_command_against_importing_torch(tiny_run, tmp_path):
    out = run_script("bench_startup.py", str(tiny_run), "--repeats", "1", cwd=tmp_path, fresh=True)  # times fresh processes
    rows = fixed_width_rows(out, "command", width=46)
    assert list(rows) == ["python -c pass", "import torch (baseline)", "import torch, PyG, Lightning, transformers",
                          "kgrec --help", "kgrec data info DATA", "kgrec data split --data DATA --out SPLIT",
                          "kgrec train --print-config", "kgrec recommend RUN --user u0",
                          "kgrec similar RUN --item i0"]  # fmt: skip
    assert rows["import torch (baseline)"][1] == "x1.00"
    for cells in rows.values():  # each ratio is its seconds over the baseline's (both printed rounded)
        assert float(cells[1][1:]) == pytest.approx(float(cells[0]) / float(rows["import torch (baseline)"][0]), abs=0.06)


def test_bench_similar_and_bench_serve_read_a_trained_run(tiny_run, tmp_path):
    out = run_script("bench_similar.py", str(tiny_run), "--anchors", "50", cwd=tmp_path)
    for part in ("valid", "test"):
        rows = fixed_width_rows(out.split(f"truth = {part} items")[1], "method", width=34)
        assert list(rows)[:2] == ["similar (centred cosine)", "plain cosine (before)"] and rows["plain cosine (before)"][1] == "1.000"
        # users like their own cluster: items that share users are similar, far more often than chance
        assert float(rows["item-KNN co-occurrence cosine"][0]) > float(rows["random"][0]) + 0.2
        assert float(rows["similar (centred cosine)"][0]) > float(rows["most popular"][0])

    out = run_script("bench_serve.py", str(tiny_run), "--requests", "20", "--concurrency", "2", "--seconds", "20",
                     cwd=tmp_path)  # fmt: skip
    rows = fixed_width_rows(out, "endpoint", width=30)
    assert list(rows) == ["GET /health (HTTP baseline)", "POST /recommend"]  # no text: no search to time
    assert all(cells[:2] == ["20", "0"] for cells in rows.values())  # every request answered, none failed
    assert "trained without text (model.use_text=false): text search is not timed" in out


def test_bench_graph_measures_each_child_alone():
    """A child's ru_maxrss starts at its parent's peak on Linux, so the parent writing 10M triples
    floored both children's peak memory; peak_rss_mb reads the child's own (VmHWM)."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("Linux only: elsewhere peak_rss_mb is ru_maxrss")
    parent = bytearray(400 * 2**20)
    parent[:: 4096] = b"\1" * len(parent[:: 4096])  # resident: 400 MiB in this process
    code = (f"import runpy; print(runpy.run_path({str(SCRIPTS / 'bench_graph.py')!r}, run_name='child')['peak_rss_mb']())")
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 10 < child < 300  # numpy and pyarrow, not the parent's 400 MiB
    del parent


def test_bench_deterministic_times_both_modes_and_compares_their_runs_weights(clustered_dataset, tmp_path):
    out = run_script("bench_deterministic.py", "--epochs", "1", "--runs", "2", *tiny_sets(clustered_dataset), cwd=tmp_path)
    rows = markdown_rows(out, "| train.deterministic |")
    assert list(rows) == ["true", "false"] and rows["false"][2] == "x1.00"
    assert rows["true"][3] == "0"  # deterministic runs of one seed repeat bit for bit
    for cells in rows.values():
        each = [float(s) for s in cells[0].split(", ")]
        assert len(each) == 2 and float(cells[1]) == pytest.approx(sum(each) / 2, abs=0.006)
