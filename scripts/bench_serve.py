"""Load-test `kgrec serve` on loopback: QPS and p50/p99 latency of recommend and search.

Starts the server over RUN_DIR in a subprocess on a free 127.0.0.1 port, then sends a bounded
number of requests (stopping after --seconds at the latest) from this second process over
--concurrency keep-alive connections, and prints a table. The client is a few lines of asyncio
speaking HTTP/1.1 on raw sockets, so that on a small machine it leaves the cores to the server
(a thread pool of httpx clients costs about as much CPU as the server itself). Baseline in the
same run: GET /health, the cost of the HTTP stack alone.

    python scripts/bench_serve.py runs/ml-100k [--requests 2000] [--concurrency 8] [--workers 1] [--in-process]
                                               [--first-queries]

--first-queries first starts the server twice, with `--no-warm-up` (the baseline) and as shipped
(warm-up on), and times how long it takes to answer /health and then the first request of each
kind, one after another: what the warm-up moves from a user's first query to the start.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from _bench import at_least_one, check_runs, one_line_errors

sys.excepthook = one_line_errors  # bad input met while running (--in-process on a run without vectors): one line


def more_than_zero(value: str) -> float:
    """``--seconds``' type: a time above 0 (at 0 no request is sent, and there is nothing to time)."""
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return number


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("run", help="run folder written by `kgrec train`")
parser.add_argument("--requests", type=at_least_one, default=2000, help="requests per endpoint")
parser.add_argument("--concurrency", type=at_least_one, default=8, help="keep-alive connections sending at once")
parser.add_argument("--seconds", type=more_than_zero, default=120, help="stop each endpoint's load after this long")
parser.add_argument("--workers", type=at_least_one, default=1, help="server worker processes (kgrec serve --workers)")
parser.add_argument("--explain", action="store_true", help="ask for explanations (KG paths) too")
parser.add_argument("--in-process", action="store_true",
                    help="first time the same queries in this process, without HTTP (1 torch thread)")  # fmt: skip
parser.add_argument("--first-queries", action="store_true",
                    help="first time start-up and each endpoint's first request, with and without warm-up")  # fmt: skip
args = parser.parse_args()
check_runs(parser, args.run)
IDS = json.loads((Path(args.run) / "id_maps.json").read_text(encoding="utf-8"))
USERS, ITEMS = IDS["users"], IDS["items"]  # the run's raw ids
TEXTS = ["animated film for children", "space adventure", "romantic comedy", "war drama", "crime thriller"]
HAS_TEXT = yaml.safe_load((Path(args.run) / "config.yaml").read_text(encoding="utf-8"))["model"]["use_text"]
if not HAS_TEXT:
    print(f"{args.run} was trained without text (model.use_text=false): text search is not timed")


def in_process() -> None:
    """Mean milliseconds per query through the Python API, one query at a time (the HTTP
    latencies below are under concurrent load, so they include queueing for the server's lock)."""
    import torch

    from kgrec.retrieval import Recommender

    torch.set_num_threads(1)
    rec = Recommender.open(args.run)
    queries = {
        "recommend": lambda i: rec.recommend(USERS[i % len(USERS)], 10, explain=False),
        "recommend + explanations": lambda i: rec.recommend(USERS[i % len(USERS)], 10, explain=True),
        "search": lambda i: rec.search(TEXTS[i % len(TEXTS)], 10, explain=False),
    }
    if not HAS_TEXT:
        del queries["search"]
    print(f"{'in-process query':<30}{'calls':>9}{'mean ms':>9}")
    for name, call in queries.items():
        n = 2000 if name == "recommend" else 200
        for i in range(20):  # warm-up
            call(i)
        started = time.perf_counter()
        for i in range(n):
            call(i)
        print(f"{name:<30}{n:>9}{(time.perf_counter() - started) / n * 1000:>9.2f}", flush=True)
    print()


if args.in_process:
    in_process()


async def request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
                  body: dict | None) -> int:  # fmt: skip
    """One HTTP/1.1 request on a kept-alive connection; returns the status code."""
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    status_line, *headers = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next(int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def load(port: int, make, total: int) -> tuple[list[float], int, float]:
    """``total`` requests ``make(i)`` over ``args.concurrency`` connections: latencies (ms), errors, wall."""
    latencies: list[float] = []
    errors = 0
    next_index = iter(range(total))
    stop_at = time.monotonic() + args.seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in next_index:
            if time.monotonic() > stop_at:
                break
            started = time.perf_counter()
            status = await request(reader, writer, *make(i))
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status != 200
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    return latencies, errors, time.perf_counter() - started


async def health_status(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await request(reader, writer, "GET", "/health", None)
    finally:
        writer.close()


def wait_ready(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if asyncio.run(health_status(port)) == 200:
                return
        except OSError:
            time.sleep(0.3)
    if server.poll() is not None:  # kgrec serve refused (its own line is on stderr): its status, 2 for bad input
        sys.exit(server.returncode)
    sys.exit("server did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_queries() -> None:
    """Seconds from start to /health, then for the first request of each kind, per server start."""
    firsts = {
        "POST /recommend": ("POST", "/recommend", {"user": USERS[0], "k": 10}),
        "POST /similar": ("POST", "/similar", {"item": ITEMS[0], "k": 10}),
        "POST /predict": ("POST", "/predict", {"user": USERS[0], "items": ITEMS[:10]}),
        "POST /search": ("POST", "/search", {"text": TEXTS[0], "k": 10}),
        "POST /recommend (new user)": ("POST", "/recommend", {"liked": ITEMS[:3], "k": 10}),
    }
    if not HAS_TEXT:
        del firsts["POST /search"]

    async def timed(port: int, method: str, path: str, body: dict | None) -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        status = await request(reader, writer, method, path, body)
        writer.close()
        if status != 200:
            sys.exit(f"{method} {path} answered {status}")
        return time.perf_counter() - started

    columns = {}
    for name, flags in (("--no-warm-up (baseline)", ["--no-warm-up"]), ("warm-up (default)", [])):
        port = free_port()
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "kgrec", "serve", args.run, "--port", str(port), *flags],
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_ready(port, server)
            column = {"start to /health": time.perf_counter() - started}
            column |= {kind: asyncio.run(timed(port, *query)) for kind, query in firsts.items()}
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        columns[name] = column
    baseline, warm = columns.values()
    print(f"{'seconds':<30}" + "".join(f"{name:>25}" for name in columns) + f"{'ratio':>8}")
    for row in baseline:
        print(f"{row:<30}{baseline[row]:>25.3f}{warm[row]:>25.3f}{warm[row] / baseline[row]:>8.2f}")
    total = {name: sum(column.values()) for name, column in columns.items()}
    print(f"{'start + one of each':<30}" + "".join(f"{t:>25.3f}" for t in total.values())
          + f"{total['warm-up (default)'] / total['--no-warm-up (baseline)']:>8.2f}")  # fmt: skip
    print()


if args.first_queries:
    first_queries()

port = free_port()
command = [sys.executable, "-m", "kgrec", "serve", args.run, "--port", str(port), "--workers", str(args.workers)]
server = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
try:
    wait_ready(port, server)
    if args.workers > 1:
        time.sleep(15)  # the first worker answers /health while the others may still be loading
    loads = {
        "GET /health (HTTP baseline)": lambda i: ("GET", "/health", None),
        "POST /recommend": lambda i: ("POST", "/recommend", {"user": USERS[i % len(USERS)], "k": 10, "explain": args.explain}),
        "POST /search": lambda i: ("POST", "/search", {"text": TEXTS[i % len(TEXTS)], "k": 10, "explain": args.explain}),
    }
    if not HAS_TEXT:
        del loads["POST /search"]
    print(f"{'endpoint':<30}{'requests':>9}{'errors':>8}{'QPS':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, make in loads.items():
        asyncio.run(load(port, make, min(200, args.requests)))  # warm-up (caches, first-call costs)
        latency, errors, wall = asyncio.run(load(port, make, args.requests))
        print(f"{name:<30}{len(latency):>9}{errors:>8}{len(latency) / wall:>9.0f}"
              f"{np.percentile(latency, 50):>9.1f}{np.percentile(latency, 99):>9.1f}", flush=True)  # fmt: skip
finally:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
