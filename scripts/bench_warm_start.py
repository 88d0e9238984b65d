"""Retraining on next week's data: a warm start from last week's run against a fresh start.

This week's data is the config's dataset, split as the config splits it. Last week's is the
earliest ``--keep`` share of this week's TRAINING interactions (by timestamp), split again as the
config splits a dataset, so last week's run never sees this week's valid or test interactions.
Runs: last week's (fresh start); this week's fresh and warm-started from last week's
(``train.init_from``), each to early stopping on its valid NDCG@10, then both again with a
budget of ``--budget`` epochs (``train.max_epochs``), as a daily retrain on a time budget would
run. The table gives epochs, training seconds and metrics, and ratios to this week's fresh start
trained to early stopping.

    python scripts/bench_warm_start.py                           # ml-100k (about 15 min on 2 cores)
    python scripts/bench_warm_start.py --keep 0.5 --runs runs/warm   # half the data last week; keep the runs
    python scripts/bench_warm_start.py --plot warm-start.png         # and the valid curves of this week's runs
"""

import argparse
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, RUNS_HELP, SET_HELP, at_least_one, config_file, kept_run_dir, train_kept

from kgrec.data import export_split
from kgrec.train import load_config, load_data, train
from kgrec.train.plots import read_metrics_csv
from kgrec.utils.io import write_figure

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--keep", type=float, default=0.9,
                    help="the share of this week's training interactions, the earliest, that last week had (default 0.9)")  # fmt: skip
parser.add_argument("--budget", type=at_least_one, default=2,
                    help="the epochs of the two runs on a time budget (default 2)")  # fmt: skip
parser.add_argument("--plot", metavar="FILE", help="draw the valid NDCG@10 by epoch of this week's fresh and warm runs to this image (.png, .svg, ...)")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--runs", metavar="DIR", help=RUNS_HELP)
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

    def run(name: str, folder: Path, *overrides: str, kept: Path = root / "runs") -> tuple[dict, Path]:
        """Train the config on ``folder`` with ``overrides``: under ``--runs`` kept by its config
        in ``kept`` (a rerun reads it back), else in the scratch folder. Returns its metrics and folder."""
        config = load_config(args.config, [*args.overrides, "train.progress=false", f"data.path={folder}", *overrides])
        if args.runs:
            out = kept_run_dir(config, kept)
            metrics = train_kept(config, kept)
        else:
            out = root / "runs" / name.replace(" ", "-").replace(",", "")
            metrics = train(config, out)
        print(f"  {name}: {metrics['epochs']} epochs, {metrics['train_seconds']:.0f} s, "
              f"valid ndcg@10 {metrics['valid']['ndcg@10']:.4f}, test ndcg@10 {metrics['test']['ndcg@10']:.4f}", flush=True)  # fmt: skip
        return metrics, out

    rows, folders = {}, {}
    # last week's data is cut by --keep, which its config does not record (data.path stays): kept
    # apart per --keep, or another --keep would read this one's run back (and warm-start from it)
    rows["last week, fresh start"], last_run = run("last week, fresh start", last, kept=root / "runs" / f"keep{args.keep:g}")
    warm = f"train.init_from={last_run}"
    budget = f"train.max_epochs={args.budget}"
    for name, overrides in {"this week, fresh start": [], "this week, warm start": [warm],
                            f"this week, fresh start, {args.budget} epochs": [budget],
                            f"this week, warm start, {args.budget} epochs": [warm, budget]}.items():  # fmt: skip
        rows[name], folders[name] = run(name, week, *overrides)
    recorded = (folders["this week, warm start"] / "config.yaml").read_text(encoding="utf-8")
    curves = {name: read_metrics_csv(folder / "logs").get("valid/ndcg@10", []) for name, folder in folders.items()}

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
print("the warm runs' config: " + next(line.strip() for line in recorded.splitlines() if line.strip().startswith("init_from:")))

if args.plot:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4))
    ax = figure.subplots()
    for name in ("this week, fresh start", "this week, warm start"):  # the budget runs repeat their first epochs
        epochs, values = zip(*curves[name], strict=True)
        ax.plot([e + 1 for e in epochs], values, marker=".", label=name.removeprefix("this week, "))
    ax.axvline(args.budget, color="grey", linestyle=":", label=f"the budget, {args.budget} epochs")
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("valid NDCG@10")
    ax.set_title(f"{this_week.name}: this week's runs, warm (from last week's run) and fresh")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    print(f"curves: {write_figure(figure, args.plot, dpi=110)}")
