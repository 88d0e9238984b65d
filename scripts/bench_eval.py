"""Seconds of one full-ranking evaluation (kgrec.eval.evaluate_split) against the scoring alone.

Full ranking scores every item for every user; what the evaluation adds on top (the excluded
items, the top-K, the hits) should cost less than the scoring itself. A random dot-product
scorer (user and item vectors of dimension ``--dim``) stands in for a model, so the bench needs
no training; the ratio to the scoring, measured in the same run, is what to compare across
machines and commits.

    python scripts/bench_eval.py --data data/ifashion     # 114k users x 30k items: about a minute
    python scripts/bench_eval.py                           # ml-100k (fetched)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch
from _bench import at_least_one, check_folder, one_line_errors

from kgrec.eval import evaluate_split
from kgrec.train import load_config, load_data

sys.excepthook = one_line_errors  # bad input met while running (a folder that is not a dataset): one line, status 2

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data", help="dataset folder (default: ml-100k, fetched)")
parser.add_argument("--dim", type=at_least_one, default=64, help="dimension of the random user and item vectors")
parser.add_argument("--batch-size", type=at_least_one, default=1024, help="users scored at once")
parser.add_argument("--repeats", type=at_least_one, default=3, help="the best of this many timings is kept")
args = parser.parse_args()
check_folder(parser, "--data", args.data)

dataset = load_data(load_config(None, [f"data.path={args.data}"] if args.data else []))
generator = torch.Generator().manual_seed(0)
users = torch.randn(dataset.n_users, args.dim, generator=generator)
items = torch.randn(dataset.n_items, args.dim, generator=generator)


def score(batch: torch.Tensor) -> torch.Tensor:
    return users[batch] @ items.T  # (B, I)


def best_of(work) -> float:
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


valid_users = torch.from_numpy(dataset.valid.user).unique()
scoring = best_of(lambda: [score(batch) for batch in valid_users.split(args.batch_size)])
evaluation = best_of(lambda: evaluate_split(score, dataset, "valid", batch_size=args.batch_size))
print(f"{dataset.name}: {len(valid_users)} valid users x {dataset.n_items} items, d={args.dim}, "
      f"batches of {args.batch_size}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip
print(f"{'scoring alone':<28}{scoring:>8.2f} s")
print(f"{'evaluate_split (valid)':<28}{evaluation:>8.2f} s   x{evaluation / scoring:.2f} of the scoring")
