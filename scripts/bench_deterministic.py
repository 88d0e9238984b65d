"""Seeded reruns with PyTorch's deterministic algorithms on and off: do they repeat bit for bit,
and at what cost.

Trains the config ``--runs`` times with ``train.deterministic=true`` and as many times with
``false``, the two modes taking turns (same seed, ``--epochs`` epochs each, this machine's
threads). Per mode: the seconds per epoch of each run, their mean as a ratio to the runs without
deterministic algorithms, the largest difference between any two of its runs' weights (0: they
repeat bit for bit) and each run's test NDCG@10.

    python scripts/bench_deterministic.py                   # ml-100k, 2 epochs, 2 runs a mode (about 3 min on 2 cores)
    python scripts/bench_deterministic.py --epochs 5 --runs 3
"""

import argparse
import platform
import tempfile
from pathlib import Path

import torch
from _bench import CONFIG_HELP, SET_HELP, at_least_one, config_file
from safetensors.torch import load_file

from kgrec.train import load_config, train

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--epochs", type=at_least_one, default=2, help="epochs of each run (default 2)")
parser.add_argument("--runs", type=at_least_one, default=2, help="runs of each mode (default 2; 2 or more to compare weights)")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
args = parser.parse_args()

MODES = ("true", "false")
print(f"{args.config}, {args.epochs} epochs a run, {args.runs} runs a mode; "
      f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip
seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
ndcg: dict[str, list[float]] = {mode: [] for mode in MODES}
weights: dict[str, list[dict[str, torch.Tensor]]] = {mode: [] for mode in MODES}
with tempfile.TemporaryDirectory() as scratch:
    for run in range(args.runs):
        for mode in MODES:  # in turns, so that a slower stretch of a shared machine hits both
            config = load_config(args.config, [*args.overrides, "train.progress=false", f"train.max_epochs={args.epochs}",
                                               "train.patience=1000", f"train.deterministic={mode}"])  # fmt: skip
            out = Path(scratch) / f"{mode}-{run}"
            metrics = train(config, out)
            seconds[mode].append(metrics["seconds_per_epoch"])
            ndcg[mode].append(metrics["test"]["ndcg@10"])
            weights[mode].append(load_file(str(out / "model.safetensors")))
            print(f"  deterministic={mode}, run {run + 1}: {metrics['seconds_per_epoch']:.2f} s/epoch, "
                  f"test ndcg@10 {metrics['test']['ndcg@10']:.6f}", flush=True)  # fmt: skip


def largest_difference(runs: list[dict[str, torch.Tensor]]) -> float:
    """The largest absolute difference between the same weight of any run and the first."""
    first = runs[0]
    return max((float((run[name].float() - first[name].float()).abs().max()) for run in runs[1:] for name in first), default=0.0)


baseline = sum(seconds["false"]) / len(seconds["false"])
print("\n| train.deterministic | s/epoch, each run | mean s/epoch | vs false | largest weight difference between runs | test ndcg@10, each run |")
print("|---|---|---:|---:|---:|---|")
for mode in MODES:
    mean = sum(seconds[mode]) / len(seconds[mode])
    difference = f"{largest_difference(weights[mode]):.3g}" if args.runs > 1 else "-"
    print(f"| {mode} | {', '.join(f'{s:.2f}' for s in seconds[mode])} | {mean:.2f} | x{mean / baseline:.2f} | {difference} | "
          f"{', '.join(f'{n:.6f}' for n in ndcg[mode])} |")
