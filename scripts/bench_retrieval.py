"""Speed of kgrec's FAISS indexes beside a plain matmul + top-k, and the machine's GEMM ceiling.

For each catalog (n items of dimension d) and index kind: build seconds, index memory (its
serialized size), single-query latency p50 / p99 (one query per call, through
``VectorIndex.search``), batched throughput (all queries in one call) and recall@10 against
exact search. Exact search is also given in GFLOP/s (2 n d flops per query: scoring is a
matrix product) and as a share of the machine's matrix-multiply rate, measured in the same
run: the best of numpy and torch on a 2048^3 float32 GEMM with the same threads.

Vectors are not isotropic Gaussian noise (no ANN index recalls well on that, and trained
embeddings do not look like it): ``clustered`` draws items from a mixture of 2000 clusters in a
16-dimensional subspace, mapped into d dimensions with a little full-rank noise and a
log-normal norm spread (trained ml-100k item vectors have 90% of their variance in 13
dimensions and norms 2.5 +- 0.9); queries come from the same mixture. ``--run RUN_DIR`` adds
the run's trained item / user vectors tiled to n with noise (d = the run's dimension).

    python scripts/bench_retrieval.py                 # 10k, 100k, 1M x d 64, 128 (about 20 min on 2 cores)
    python scripts/bench_retrieval.py --quick         # seconds: a smoke test
    python scripts/bench_retrieval.py --sizes 100000 --dims 64 --run runs/ml-100k
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import torch
from _bench import at_least_one, check_runs, one_line_errors

from kgrec.errors import KgrecError
from kgrec.retrieval import IndexConfig, VectorIndex
from kgrec.utils.io import write_json

sys.excepthook = one_line_errors  # bad input met while running (a run without vectors): one line, status 2

K = 10
RANK = 16  # of the synthetic vectors' cluster subspace (trained_like)
ANN_KINDS = ("hnsw", "ivfpq")


def numbers_from(least: int, why: str) -> Callable[[str], list[int]]:
    """The type of ``--sizes`` and ``--dims``: comma-separated whole numbers, each at least ``least``."""

    def numbers(value: str) -> list[int]:
        try:
            out = [int(number) for number in value.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected whole numbers, comma-separated, got '{value}'") from None
        if min(out) < least:
            raise argparse.ArgumentTypeError(f"each must be at least {least} ({why}), got {value}")
        return out

    return numbers


def ann_kinds(value: str) -> list[str]:
    """``--kinds``' type: comma-separated ANN kinds, or none (exact search alone); a mistyped
    kind stops the bench, where it was skipped in silence."""
    kinds = [kind for kind in value.split(",") if kind]
    unknown = [kind for kind in kinds if kind not in ANN_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{','.join(unknown)}: expected {' or '.join(ANN_KINDS)} (exact search always runs)")
    return kinds


def trained_like(n: int, d: int, seed: int, clusters: int = 2000, rank: int = RANK) -> np.ndarray:
    """A clustered, low-rank mixture with a norm spread (see the module docstring)."""
    rng = np.random.default_rng(seed)
    structure = np.random.default_rng(1000 + d)  # the same clusters for items and queries
    basis = np.linalg.qr(structure.standard_normal((d, rank)))[0].T  # (rank, d)
    centers = structure.standard_normal((clusters, rank)) * 1.5
    out = np.empty((n, d), np.float32)
    for start in range(0, n, 200_000):  # chunks bound the temporary memory
        m = min(200_000, n - start)
        z = centers[rng.integers(0, clusters, m)] + rng.standard_normal((m, rank))
        x = z @ basis + 0.05 * rng.standard_normal((m, d))
        out[start : start + m] = x * rng.lognormal(0.0, 0.3, (m, 1))
    return out


def tiled(base: np.ndarray, n: int, seed: int, noise: float = 0.25) -> np.ndarray:
    """``n`` rows drawn from ``base`` plus Gaussian noise scaled by ``noise`` x each dimension's spread."""
    rng = np.random.default_rng(seed)
    scale = base.std(0, keepdims=True) * noise
    out = np.empty((n, base.shape[1]), np.float32)
    for start in range(0, n, 200_000):
        m = min(200_000, n - start)
        out[start : start + m] = base[rng.integers(0, len(base), m)] + scale * rng.standard_normal((m, base.shape[1]))
    return out


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def gemm_ceiling(threads: int, size: int = 2048) -> float:
    """GFLOP/s of a ``size``^3 float32 matrix product: the best of numpy and torch."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    an, bn = a.numpy(), b.numpy()
    flops = 2 * size**3
    return flops / min(best_of(lambda: a @ b), best_of(lambda: an @ bn)) / 1e9


def numpy_topk(queries: np.ndarray, items: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ items.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        out.append(np.take_along_axis(top, order, 1))
    return np.concatenate(out)


def torch_topk(queries: np.ndarray, items: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    q, x = torch.from_numpy(queries), torch.from_numpy(items)
    return torch.cat([(q[s : s + chunk] @ x.T).topk(k, dim=1).indices for s in range(0, len(q), chunk)]).numpy()


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / truth.shape[1] for a, b in zip(found, truth, strict=True)]))


def latency(index: VectorIndex, queries: np.ndarray, count: int) -> tuple[float, float]:
    times = []
    for q in queries[:count]:
        started = time.perf_counter()
        index.search(q[None], K)
        times.append(time.perf_counter() - started)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def bench_catalog(name: str, items: np.ndarray, queries: np.ndarray, kinds: list[str], ceiling: float,
                  quick: bool) -> list[dict]:  # fmt: skip
    n, d = items.shape
    rows: list[dict] = []
    flops = 2.0 * len(queries) * n * d
    singles = 50 if quick else (100 if n >= 1_000_000 else 300)

    def add(method: str, params: str, build: float, memory: float, p50: float, p99: float, seconds: float,
            rec: float, exact: bool = False) -> None:  # fmt: skip
        gflops = flops / seconds / 1e9 if exact else None
        rows.append(dict(data=name, n=n, d=d, method=method, params=params, build_s=build, memory_mib=memory,
                         p50_ms=p50, p99_ms=p99, qps=len(queries) / seconds, recall10=rec, gflops=gflops,
                         share=gflops / ceiling if gflops else None))  # fmt: skip
        r = rows[-1]
        extra = f"  {gflops:6.1f} GFLOP/s = {r['share']:.0%} of GEMM" if gflops else ""
        print(f"  {method:<7} {params:<22} build {build:7.2f} s  mem {memory:8.1f} MiB  p50 {p50:7.3f} ms  "
              f"p99 {p99:7.3f} ms  {r['qps']:9.0f} q/s  recall@10 {rec:.3f}{extra}", flush=True)  # fmt: skip

    # exact: kgrec's flat index (FAISS, BLAS batches), and the plain baselines
    flat = VectorIndex.build(items, config=IndexConfig(kind="flat"))
    truth = flat.search(queries, K)[1]
    seconds = best_of(lambda index=flat: index.search(queries, K), 2)
    p50, p99 = latency(flat, queries, singles)
    add("flat", "exact (FAISS IP)", flat.build_seconds, flat.memory_bytes() / 2**20, p50, p99, seconds,
        recall(flat.search(queries, K)[1], truth), exact=True)  # fmt: skip
    del flat
    gc.collect()
    for method, fn in (("numpy", numpy_topk), ("torch", torch_topk)):
        seconds = best_of(lambda fn=fn: fn(queries, items, K), 2)
        one = [time.perf_counter()]
        for q in queries[:singles]:
            fn(q[None], items, K)
            one.append(time.perf_counter())
        single = np.diff(one) * 1e3
        add(method, "matmul + top-k", 0.0, items.nbytes / 2**20, float(np.percentile(single, 50)),
            float(np.percentile(single, 99)), seconds, recall(fn(queries, items, K), truth), exact=True)  # fmt: skip

    if "hnsw" in kinds:
        index = VectorIndex.build(items, config=IndexConfig(kind="hnsw"))
        for ef in (16, 32) if quick else (32, 64, 128, 256):
            index.set_search_params(ef_search=ef)
            seconds = best_of(lambda index=index: index.search(queries, K), 2)
            p50, p99 = latency(index, queries, singles)
            add("hnsw", f"M=32 efC=80 ef={ef}", index.build_seconds, index.memory_bytes() / 2**20, p50, p99,
                seconds, recall(index.search(queries, K)[1], truth))  # fmt: skip
        del index
        gc.collect()
    if "ivfpq" in kinds:
        for refine in (0, 4):
            index = VectorIndex.build(items, config=IndexConfig(kind="ivfpq", refine=refine))
            c = index.config
            for nprobe in (8, 32) if not quick else (8,):
                index.set_search_params(nprobe=nprobe)
                seconds = best_of(lambda index=index: index.search(queries, K), 2)
                p50, p99 = latency(index, queries, singles)
                params = f"nl={c.nlist} m={c.pq_m} np={nprobe}" + (f" rf={refine}" if refine else "")
                add("ivfpq", params, index.build_seconds, index.memory_bytes() / 2**20, p50, p99, seconds,
                    recall(index.search(queries, K)[1], truth))  # fmt: skip
            del index
            gc.collect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    parser.add_argument("--sizes", type=numbers_from(K, f"each query lists {K} items"), default="10000,100000,1000000",
                        help=f"catalog sizes (comma-separated, {K} or more)")  # fmt: skip
    parser.add_argument("--dims", type=numbers_from(RANK, f"the synthetic vectors span {RANK} dimensions"),
                        default="64,128", help=f"vector dimensions (comma-separated, {RANK} or more)")  # fmt: skip
    parser.add_argument("--kinds", type=ann_kinds, default="hnsw,ivfpq",
                        help="ANN kinds besides exact search: hnsw, ivfpq (comma-separated; '' for none)")  # fmt: skip
    parser.add_argument("--queries", type=at_least_one, default=1000, help="queries per catalog")
    parser.add_argument("--threads", type=at_least_one, default=os.cpu_count() or 1, help="FAISS / BLAS threads")
    parser.add_argument("--run", type=Path, help="also bench this run's trained vectors, tiled with noise")
    parser.add_argument("--json", type=Path, help="write the rows to this JSON file")
    args = parser.parse_args()
    sizes, dims, queries, kinds = args.sizes, args.dims, args.queries, args.kinds
    if args.quick:
        sizes, dims, queries = [5000], [32], 200
    run_vectors = None
    if args.run is not None:  # read first: a run without vectors stops the bench before any work
        from safetensors.numpy import load_file

        check_runs(parser, args.run)
        if not (args.run / "vectors.safetensors").is_file():
            raise KgrecError(f"{args.run}: no vectors.safetensors: the model was trained without the retrieval tower; "
                             "retrain with 'retrieval' in model.tasks")  # fmt: skip
        run_vectors = load_file(str(args.run / "vectors.safetensors"))
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    try:  # numpy's and FAISS's OpenBLAS pools follow --threads too
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)
    except ImportError:
        print("threadpoolctl is not installed: numpy may use more BLAS threads than --threads")

    ceiling = gemm_ceiling(args.threads, 1024 if args.quick else 2048)
    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; "
          f"faiss {faiss.__version__}, torch {torch.__version__}, numpy {np.__version__}; "
          f"load average {load[0]:.2f} at start")  # fmt: skip
    print(f"GEMM ceiling ({1024 if args.quick else 2048}^3 float32, best of numpy/torch): {ceiling:.1f} GFLOP/s\n")
    rows: list[dict] = []
    catalogs: list[tuple[str, int, int]] = [("clustered", n, d) for d in dims for n in sizes]
    if run_vectors is not None:
        catalogs += [(f"{args.run.name} tiled", n, run_vectors["item"].shape[1]) for n in sizes]
    for name, n, d in catalogs:
        print(f"{name}: n={n:,} d={d}", flush=True)
        if run_vectors is not None and name.endswith("tiled"):
            items, qs = tiled(run_vectors["item"], n, 0), tiled(run_vectors["user"], queries, 1)
        else:
            items, qs = trained_like(n, d, 0), trained_like(queries, d, 1)
        rows += bench_catalog(name, items, qs, kinds, ceiling, args.quick)
        del items
        gc.collect()
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} at the end (other processes share the cores)\n")
    print_table(rows, ceiling)
    if args.json:
        write_json(args.json, {"ceiling_gflops": ceiling, "rows": rows})  # atomic; makes the folder


def print_table(rows: list[dict], ceiling: float) -> None:
    header = (f"| data | n | d | method | params | build s | memory MiB | p50 ms | p99 ms | batch q/s | recall@10 "
              f"| GFLOP/s (share of {ceiling:.0f}) |")  # fmt: skip
    print(header)
    print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|")
    for r in rows:
        share = f"{r['gflops']:.1f} ({r['share']:.0%})" if r["gflops"] else ""
        print(f"| {r['data']} | {r['n']:,} | {r['d']} | {r['method']} | {r['params']} | {r['build_s']:.2f} | "
              f"{r['memory_mib']:.1f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['qps']:,.0f} | "
              f"{r['recall10']:.3f} | {share} |")  # fmt: skip


if __name__ == "__main__":
    main()
