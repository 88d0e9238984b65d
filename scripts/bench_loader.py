"""Milliseconds per training batch of kgrec's loader against PyTorch's row-by-row default.

A step's batch is 2,048 (user, item, rating) rows drawn from a shuffled epoch. PyTorch's default
(``DataLoader(TensorDataset(...), batch_size=B)``) calls ``__getitem__`` once per row and stacks
the rows; kgrec's loader (``interactions_loader`` in ``kgrec/train/module.py``, what
``RecommenderModule.train_dataloader`` returns) gathers each column once per batch. On a GPU,
where a step of the default ml-100k config takes tens of milliseconds, the default's per-row
fetching is a large part of the step. The cost depends on the number of rows and the batch size
alone, so random rows of each dataset's training size stand in for it.

    python scripts/bench_loader.py      # seconds
    python scripts/bench_loader.py --quick --repeats 1   # a smoke test
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch
from _bench import at_least_one, one_line_errors
from torch.utils.data import DataLoader, TensorDataset

from kgrec.train.module import EpochShuffle, interactions_loader

sys.excepthook = one_line_errors  # bad input (a KgrecError) in one line with status 2, as every bench

TRAINING_ROWS = {"ml-100k": 80_808, "iFashion": 742_837}  # their training splits (seed 2026)

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--batch-size", type=at_least_one, default=2048, help="training rows per batch")
parser.add_argument("--repeats", type=at_least_one, default=3, help="the best of this many epochs is kept")
parser.add_argument("--quick", action="store_true", help="one 20,000-row set instead: a smoke test in seconds")
args = parser.parse_args()
sizes = {"quick": 20_000} if args.quick else TRAINING_ROWS


def ms_per_batch(loader: DataLoader) -> float:
    """The best of ``--repeats`` passes over ``loader``, in milliseconds per batch."""
    best = float("inf")
    for _ in range(args.repeats):
        started = time.perf_counter()
        batches = sum(1 for _ in loader)
        best = min(best, (time.perf_counter() - started) / batches * 1000)
    return best


print(f"batch {args.batch_size}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
header = f"{'training rows':<22}{'row by row ms':>15}{'kgrec ms':>10}{'kgrec / row by row':>20}"
print(header)
print("-" * len(header))
for name, rows in sizes.items():
    columns = (torch.randint(0, 10_000, (rows,)), torch.randint(0, 10_000, (rows,)), torch.rand(rows))
    default = ms_per_batch(DataLoader(TensorDataset(*columns), batch_size=args.batch_size, sampler=EpochShuffle(rows, seed=0)))
    ours = ms_per_batch(interactions_loader(columns, args.batch_size, seed=0))
    print(f"{f'{name} ({rows:,})':<22}{default:>15.2f}{ours:>10.2f}{f'x{ours / default:.3f}':>20}")
