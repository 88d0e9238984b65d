"""Load-test `kgrec serve` on loopback: QPS and p50/p99 latency of recommend and search.

Starts the server over RUN_DIR in a subprocess on a free 127.0.0.1 port, then sends a bounded
number of requests (stopping after --seconds at the latest) from this second process with
--concurrency threads, and prints a table. Baseline in the same run: GET /health, the cost of
the HTTP stack alone.

    python scripts/bench_serve.py runs/ml-100k [--requests 2000] [--concurrency 8] [--seconds 120]
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("run", help="run folder written by `kgrec train`")
parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint")
parser.add_argument("--concurrency", type=int, default=8)
parser.add_argument("--seconds", type=float, default=120, help="stop each endpoint's load after this long")
parser.add_argument("--explain", action="store_true", help="ask for explanations (KG paths) too")
args = parser.parse_args()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
base = f"http://127.0.0.1:{port}"
server = subprocess.Popen([sys.executable, "-m", "kgrec", "serve", args.run, "--port", str(port)],
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
try:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            sys.exit("server did not start")
        time.sleep(0.3)
    users = [str(u) for u in range(1, 944)]  # ml-100k raw user ids
    texts = ["animated film for children", "space adventure", "romantic comedy", "war drama", "crime thriller"]
    loads = {
        "GET /health (HTTP baseline)": lambda i: ("GET", "/health", None),
        "POST /recommend": lambda i: ("POST", "/recommend", {"user": users[i % len(users)], "k": 10, "explain": args.explain}),
        "POST /search": lambda i: ("POST", "/search", {"text": texts[i % len(texts)], "k": 10, "explain": args.explain}),
    }
    print(f"{'endpoint':<30}{'requests':>9}{'errors':>8}{'QPS':>9}{'p50 ms':>9}{'p99 ms':>9}")
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=args.concurrency)) as client:
        for name, make in loads.items():
            stop_at = time.monotonic() + args.seconds

            def one(i: int, make=make, stop_at=stop_at) -> tuple[float, int]:
                if time.monotonic() > stop_at:
                    return -1.0, 0
                method, path, body = make(i)
                started = time.perf_counter()
                status = client.request(method, base + path, json=body).status_code
                return (time.perf_counter() - started) * 1000, status

            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                done = [r for r in pool.map(one, range(args.requests)) if r[0] >= 0]
            wall = time.perf_counter() - started
            latency = np.array([r[0] for r in done])
            errors = sum(r[1] != 200 for r in done)
            print(f"{name:<30}{len(done):>9}{errors:>8}{len(done) / wall:>9.0f}"
                  f"{np.percentile(latency, 50):>9.1f}{np.percentile(latency, 99):>9.1f}", flush=True)  # fmt: skip
finally:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
