"""Benchmark the graph builder on a synthetic 10M-triple dataset against a plain pandas read.

    python scripts/bench_graph.py [--triples 10000000] [--quick]

Writes a synthetic dataset in RecBole atomic files to a temporary folder (a ``.kg`` whose
entities follow a skewed, power-law-like popularity, a few thousand items linked through
``.link``, a small ``.item`` and ``.inter``), then measures, each in a fresh subprocess:

1. ``load_dataset`` + ``build_graph`` (the kgrec path), and
2. ``pandas.read_csv(sep="\\t")`` of the same ``.kg`` file (the baseline),

and prints seconds and peak RSS (the child's own: :func:`peak_rss_mb`) for each, with their ratio.
Goal: 10M triples built in <= 30 s with peak memory <= 2 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from kgrec.errors import KgrecError
from kgrec.utils.io import atomic_path

NAME = "synth"


def one_line_errors(*exception: object) -> None:
    """``sys.excepthook``: ``_bench.one_line_errors``, as every bench (bad input in one line, status
    2), imported only when an exception comes: ``_bench`` imports torch, and the children that
    measure memory run this file too."""
    from _bench import one_line_errors as told

    told(*exception)  # type: ignore[arg-type]


sys.excepthook = one_line_errors


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MiB: on Linux ``VmHWM``, the high-water mark of
    its memory map, which starts empty at ``exec``. Not ``ru_maxrss`` there: the kernel carries
    the parent's high-water mark into a child's across ``exec``, so each child reported at least
    the parent's peak (writing the synthetic data, torch: a 500 MB parent gave a 13 MB child 514).
    Elsewhere ``ru_maxrss`` (KiB; bytes on macOS)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# ---------------------------------------------------------------------------- synthetic data
def skewed(rng: np.random.Generator, n: int, size: int, power: float) -> np.ndarray:
    """Ids in [0, n) with a power-law-like popularity (small ids after ``power`` skew,
    then shuffled so popular ids are spread over the range)."""
    ranks = np.minimum((n * rng.random(size) ** power).astype(np.int64), n - 1)
    return rng.permutation(n)[ranks]


def write_table(path: Path, header: str, columns: dict[str, pa.Array]) -> None:
    """Write one atomic file (header line + tab-separated rows, no quoting), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write((header + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
        pacsv.write_csv(pa.table(columns), handle, write_options=options)


def tokens(prefix: str, ids: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(ids), pa.string()), "")


def make_dataset(root: Path, n_triples: int, n_items: int, seed: int = 0) -> Path:
    """Write ``root/synth/synth.{kg,link,item,inter}`` and return the dataset folder."""
    rng = np.random.default_rng(seed)
    folder = root / NAME
    folder.mkdir(parents=True, exist_ok=True)
    n_entities = max(n_triples // 8, n_items * 2)  # ~8 triples per entity on average
    n_relations = 40

    # Items are entities 0..n_items-1 (the first ones, before shuffling of popularity).
    item_head = rng.random(n_triples) < 0.4  # 40% of triples start at an item
    head = np.where(item_head, rng.integers(0, n_items, n_triples), skewed(rng, n_entities, n_triples, 1.5))
    tail = skewed(rng, n_entities, n_triples, 3.0)  # a few hub entities (genres, countries ...)
    relation = skewed(rng, n_relations, n_triples, 2.0)
    write_table(
        folder / f"{NAME}.kg",
        "head_id:token\trelation_id:token\ttail_id:token",
        {"h": tokens("m.0", head), "r": tokens("rel.", relation), "t": tokens("m.0", tail)},
    )
    del head, tail, relation

    linked = rng.permutation(n_items)[: int(n_items * 0.95)]
    write_table(
        folder / f"{NAME}.link",
        "item_id:token\tentity_id:token",
        {"i": tokens("", linked), "e": tokens("m.0", linked)},
    )
    genres = np.array(["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "War"])
    item_ids = np.arange(n_items)
    item_genres = [" ".join(rng.choice(genres, rng.integers(1, 4), replace=False)) for _ in item_ids]
    write_table(
        folder / f"{NAME}.item",
        "item_id:token\ttitle:token\tclass:token_seq",
        {"i": tokens("", item_ids), "t": tokens("Movie ", item_ids), "c": pa.array(item_genres)},
    )
    n_inter = 100_000
    write_table(
        folder / f"{NAME}.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float",
        {
            "u": tokens("", rng.integers(0, 2000, n_inter)),
            "i": tokens("", skewed(rng, n_items, n_inter, 2.0)),
            "r": pa.array(rng.integers(1, 6, n_inter).astype(np.float64)),
            "t": pa.array(rng.integers(8e8, 9e8, n_inter).astype(np.float64)),
        },
    )
    return folder


# ---------------------------------------------------------------------------- children
def child(task: str, folder: Path) -> dict[str, float]:
    """Run one measurement in this (fresh) process; return seconds per step."""
    timings: dict[str, float] = {}
    if task == "pandas":
        import pandas as pd

        start = time.perf_counter()
        frame = pd.read_csv(folder / f"{NAME}.kg", sep="\t")
        timings["pandas.read_csv"] = time.perf_counter() - start
        timings["rows"] = len(frame)
    else:
        from kgrec.data import load_dataset
        from kgrec.graph import GraphRecipe, build_graph
        from kgrec.graph.recipe import AttributeRelation

        recipe = GraphRecipe(
            attributes=(AttributeRelation("class", "item.genre"),), min_degree=2, inverse=True
        )
        start = time.perf_counter()
        dataset = load_dataset(folder)
        timings["load_dataset"] = time.perf_counter() - start
        timings["peak_load_mb"] = peak_rss_mb()
        middle = time.perf_counter()
        graph = build_graph(dataset, recipe)
        timings["build_graph"] = time.perf_counter() - middle
        timings["rows"] = len(dataset.kg) if dataset.kg is not None else 0
        timings["graph_triples"] = graph.n_triples
        timings["graph_nodes"] = graph.n_nodes
    timings["peak_rss_mb"] = peak_rss_mb()
    return timings


def run_child(task: str, folder: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", task, str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if result.returncode == 2:  # the child's KgrecError (main): the synthetic data cannot feed the recipe
        raise KgrecError(f"the {task} child, on the synthetic dataset: {result.stderr.strip().splitlines()[-1]}")
    if result.returncode != 0:
        sys.exit(f"child '{task}' failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--triples", type=int, default=10_000_000, help="size of the synthetic .kg (1 or more)")
    parser.add_argument("--items", type=int, default=5000, help="number of items, 95%% linked (1 or more)")
    parser.add_argument("--quick", action="store_true", help="1M triples instead")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    for option, value in (("--triples", args.triples), ("--items", args.items)):
        if value < 1:
            parser.error(f"argument {option}: must be at least 1, got {value}")
    if args.child:
        try:
            print(json.dumps(child(args.child[0], Path(args.child[1]))))
        except KgrecError as error:  # bad input (a dataset too small for the recipe): run_child tells it
            print(error, file=sys.stderr)
            return 2
        return 0
    n_triples = 1_000_000 if args.quick else args.triples

    with tempfile.TemporaryDirectory(prefix="kgrec-bench-") as tmp:
        start = time.perf_counter()
        folder = make_dataset(Path(tmp), n_triples, args.items)
        size = (folder / f"{NAME}.kg").stat().st_size
        print(f"synthetic dataset: {n_triples:,} triples ({size / 2**20:.0f} MiB .kg), {args.items} items, "
              f"written in {time.perf_counter() - start:.1f}s; {os.cpu_count()} CPUs")  # fmt: skip
        ours = run_child("kgrec", folder)
        base = run_child("pandas", folder)

    total = ours["load_dataset"] + ours["build_graph"]
    rows = [
        ("kgrec load_dataset", ours["load_dataset"], ours["peak_load_mb"]),
        ("kgrec build_graph", ours["build_graph"], None),
        ("kgrec load + build", total, ours["peak_rss_mb"]),
        ("pandas.read_csv(.kg)", base["pandas.read_csv"], base["peak_rss_mb"]),
    ]
    print(f"\n{'step':<24}{'seconds':>10}{'peak RSS MB':>14}")
    for label, seconds, rss in rows:
        print(f"{label:<24}{seconds:>10.2f}{'' if rss is None else f'{rss:>14.0f}'}")
    print(f"\nratio kgrec / pandas: {total / base['pandas.read_csv']:.2f}x time, "
          f"{ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x peak memory")  # fmt: skip
    print(f"graph: {int(ours['graph_nodes']):,} nodes, {int(ours['graph_triples']):,} triples "
          f"(min_degree=2, inverse relations, genre attribute)")  # fmt: skip
    ok = total <= 30 and ours["peak_rss_mb"] <= 2048
    print(f"goal (<= 30 s, <= 2 GB): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
