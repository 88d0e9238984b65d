"""Load-test `kgrec serve` on loopback: QPS and p50/p99 latency of recommend and search.

Starts the server over RUN_DIR in a subprocess on a free 127.0.0.1 port, then sends a bounded
number of requests (stopping after --seconds at the latest) from this second process over
--concurrency keep-alive connections, and prints a table. The client is a few lines of asyncio
speaking HTTP/1.1 on raw sockets, so that on a small machine it leaves the cores to the server
(a thread pool of httpx clients costs about as much CPU as the server itself). Baseline in the
same run: GET /health, the cost of the HTTP stack alone.

    python scripts/bench_serve.py runs/ml-100k [--requests 2000] [--concurrency 8] [--workers 1] [--in-process]
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

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("run", help="run folder written by `kgrec train`")
parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint")
parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections sending at once")
parser.add_argument("--seconds", type=float, default=120, help="stop each endpoint's load after this long")
parser.add_argument("--workers", type=int, default=1, help="server worker processes (kgrec serve --workers)")
parser.add_argument("--explain", action="store_true", help="ask for explanations (KG paths) too")
parser.add_argument("--in-process", action="store_true",
                    help="first time the same queries in this process, without HTTP (1 torch thread)")  # fmt: skip
args = parser.parse_args()
USERS = json.loads((Path(args.run) / "id_maps.json").read_text(encoding="utf-8"))["users"]  # the run's raw user ids
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
    sys.exit("server did not start")


with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
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
