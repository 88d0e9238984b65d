"""How much does the split move the figures? kgrec and EASE on several random splits.

Every other bench fixes the split (``data.seed``) and varies the training seed. This one draws a
new per-user random 80/10/10 split for each split seed (the config's seed first, then the next
ones) and trains, on each: most-popular, EASE (lambda tuned on valid) and kgrec's config (one
training seed). It prints each split's test metrics and their mean and spread, and kgrec / EASE
per split, so a difference between models can be set against how far the split alone moves
each of them.

    python scripts/bench_splits.py                 # ml-100k, 5 splits (about 20 min on 2 cores)
    python scripts/bench_splits.py --splits 2 --set train.max_epochs=3   # a quick look
    python scripts/bench_splits.py --first-split 2028 --splits 3         # the last three splits alone
"""

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, RUNS_HELP, SET_HELP, at_least_one, config_file, train_seed

from kgrec.baselines import EASE, MostPopular, tune_on_valid
from kgrec.eval import evaluate_split
from kgrec.train import load_config, load_data

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--splits", type=at_least_one, default=5, help="how many split seeds: the first one and the next ones")
parser.add_argument("--first-split", type=int, default=None, help="the first split seed (default: the config's data.seed)")
parser.add_argument("--runs", metavar="DIR", help=RUNS_HELP)
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
args = parser.parse_args()

KEYS = ("ndcg@10", "recall@20")
first_seed = args.first_split if args.first_split is not None else load_config(args.config, args.overrides).data.seed
split_seeds = [first_seed + i for i in range(args.splits)]
print(f"{args.config}; split seeds {split_seeds}; kgrec training seed 0; "
      f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip

results: dict[str, list[dict]] = {"most-popular": [], "EASE (valid-tuned)": [], "kgrec": []}
for split_seed in split_seeds:
    overrides = [*args.overrides, f"data.seed={split_seed}"]
    dataset = load_data(load_config(args.config, [*overrides, "train.progress=false"]))
    popular = MostPopular().fit(dataset.train, dataset.n_users, dataset.n_items)
    results["most-popular"].append(evaluate_split(popular.score, dataset, "test"))
    ease = tune_on_valid(dataset, lambda reg: EASE(reg=reg), EASE.REG_GRID)
    results["EASE (valid-tuned)"].append(evaluate_split(ease.model.score, dataset, "test"))
    metrics = train_seed(args.config, 0, overrides, runs=args.runs)
    results["kgrec"].append(metrics["test"])
    print(f"  split {split_seed}: EASE (lambda={ease.best:g}) ndcg@10 {results['EASE (valid-tuned)'][-1]['ndcg@10']:.4f}, "
          f"kgrec ndcg@10 {metrics['test']['ndcg@10']:.4f} ({metrics['epochs']} epochs, "
          f"{metrics['train_seconds']:.0f} s of training)", flush=True)  # fmt: skip

print(f"\n| model | {' | '.join(f'test {k} per split' for k in KEYS)} | {' | '.join(f'{k} mean ± std' for k in KEYS)} |")
print("|---|" + "---|" * len(KEYS) + "---:|" * len(KEYS))
for name, runs in results.items():
    per_split = " | ".join(" / ".join(f"{r[k]:.4f}" for r in runs) for k in KEYS)
    spread = " | ".join(f"{np.mean([r[k] for r in runs]):.4f} ± {np.std([r[k] for r in runs]):.4f}" for k in KEYS)
    print(f"| {name} | {per_split} | {spread} |")
ratios = [k["ndcg@10"] / e["ndcg@10"] for k, e in zip(results["kgrec"], results["EASE (valid-tuned)"], strict=True)]
print(f"\nkgrec / EASE ndcg@10 per split: {', '.join(f'x{r:.3f}' for r in ratios)} "
      f"(mean x{np.mean(ratios):.3f}); config {Path(args.config).name}")  # fmt: skip
