"""Retraining on next week's data: a warm start from last week's run against a fresh start.

This week's data is the config's dataset, split as the config splits it. Last week's is the
earliest ``--keep`` share of this week's TRAINING interactions (by timestamp), split again as the
config splits a dataset, so last week's run never sees this week's valid or test interactions.
Three runs: last week's (fresh), this week's fresh, and this week's warm-started from last week's
(``train.init_from``); each with early stopping on its valid NDCG@10. The table gives epochs,
training seconds and test metrics, the warm start's as ratios to the fresh start's.

    python scripts/bench_warm_start.py                         # ml-100k (about 15 min on 2 cores)
    python scripts/bench_warm_start.py --keep 0.5 --runs runs/warm   # half the data last week; keep the runs
"""

import argparse
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, RUNS_HELP, SET_HELP, config_file

from kgrec.data import export_split
from kgrec.train import load_config, load_data, train

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--keep", type=float, default=0.9,
                    help="the share of this week's training interactions, the earliest, that last week had (default 0.9)")  # fmt: skip
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--runs", metavar="DIR", help=RUNS_HELP.split(", so that")[0] + " (default: temporary folders, deleted)")
args = parser.parse_args()
if not 0 < args.keep < 1:
    parser.error(f"--keep: expected a share between 0 and 1, got {args.keep}")

config = load_config(args.config, [*args.overrides, "train.progress=false"])
this_week = load_data(config)
if this_week.train.timestamp is None:
    parser.error(f"{this_week.name} has no timestamps: last week cannot be cut by time")
print(f"{args.config}; {this_week.name}, last week = the earliest {args.keep:.0%} of this week's training "
      f"interactions; {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip

with tempfile.TemporaryDirectory() as scratch:
    root = Path(args.runs) if args.runs else Path(scratch)
    data = root / "data"
    shutil.rmtree(data, ignore_errors=True)
    # this week: the config's split, kept as given; last week: its earliest training rows, split anew
    week = export_split(this_week, data / "this-week" / this_week.name)
    last = data / "last-week" / this_week.name
    last.mkdir(parents=True)
    for side in sorted(week.iterdir()):
        if side.suffix != ".inter":
            shutil.copy(side, last / side.name)
    lines = (week / f"{this_week.name}.train.inter").read_text(encoding="utf-8").splitlines()
    column = next(i for i, h in enumerate(lines[0].split("\t")) if h.startswith("timestamp:"))
    times = np.array([float(line.split("\t")[column]) for line in lines[1:]])
    cut = np.quantile(times, args.keep)
    kept = [line for line, t in zip(lines[1:], times, strict=True) if t <= cut]
    (last / f"{this_week.name}.inter").write_text("\n".join([lines[0], *kept]) + "\n", encoding="utf-8")

    def run(name: str, folder: Path, *overrides: str) -> dict:
        out = root / name
        shutil.rmtree(out, ignore_errors=True)
        metrics = train(load_config(args.config, [*args.overrides, "train.progress=false", f"data.path={folder}", *overrides]), out)
        print(f"  {name}: {metrics['epochs']} epochs, {metrics['train_seconds']:.0f} s, "
              f"valid ndcg@10 {metrics['valid']['ndcg@10']:.4f}, test ndcg@10 {metrics['test']['ndcg@10']:.4f}", flush=True)  # fmt: skip
        return metrics

    rows = {
        "last week, fresh start": run("last-week", last),
        "this week, fresh start": run("fresh", week),
        "this week, warm start from last week": run("warm", week, f"train.init_from={root / 'last-week'}"),
    }

fresh = rows["this week, fresh start"]
print(f"\nlast week: {len(kept):,} interactions, split as the config splits; this week: {len(this_week.train):,} "
      f"training interactions of {len(this_week.interactions()):,}")  # fmt: skip
print("| run | epochs | epochs to the best | seconds | valid ndcg@10 | test ndcg@10 | test recall@20 | seconds vs fresh | ndcg@10 vs fresh |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, m in rows.items():
    ratios = "- | -" if name.startswith("last") else (
        f"x{m['train_seconds'] / fresh['train_seconds']:.2f} | x{m['test']['ndcg@10'] / fresh['test']['ndcg@10']:.3f}")
    print(f"| {name} | {m['epochs']} | {m['best_epoch'] + 1} | {m['train_seconds']:.0f} | {m['valid']['ndcg@10']:.4f} | "
          f"{m['test']['ndcg@10']:.4f} | {m['test']['recall@20']:.4f} | {ratios} |")
print("(last week's valid and test are its own split of this week's training data: not comparable with this week's)")
