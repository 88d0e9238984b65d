"""Quality on ml-100k: kgrec's default config beside baselines trained on the same split, same run.

Protocol: every rating is an interaction; per-user random 80/10/10 split (seeded); full ranking
over all items, excluding each user's train (and, for test, valid) items; model selection on
valid only. Baselines: most-popular, BPR-MF (kgrec's own code with ID embeddings and the
retrieval tower only, BPR loss; learning rate and L2 tuned on valid with seed 0, up to 300 short
epochs) and EASE (closed form, lambda tuned on valid). When the config's EASE teacher is
session-weighted, blended with user-based EASE or scores a recency-weighted history
(``train.teacher_session_hours``, ``train.teacher_user_weight``, ``train.teacher_recency_hours``),
that teacher's own ranking is a row too.

    python scripts/bench_quality.py                 # 3 seeds of the default config (minutes on CPU)
    python scripts/bench_quality.py --seeds 1 --set train.max_epochs=3   # a quick look
    python scripts/bench_quality.py --seeds 1 --skip-kgrec --bpr-lr 0.001 --bpr-wd 1e-5 3e-5   # probe BPR-MF
    python scripts/bench_quality.py --skip-kgrec --skip-bpr --set train.teacher_user_weight=1   # EASE vs a teacher
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, RUNS_HELP, SET_HELP, at_least_one, config_file, train_seed

from kgrec.baselines import EASE, MostPopular, tune_on_valid
from kgrec.eval import evaluate_split
from kgrec.models import ModelConfig
from kgrec.train import load_config, load_data
from kgrec.train.teacher import EaseTeacher
from kgrec.utils.io import write_json

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--seeds", type=at_least_one, default=3, help="training seeds (the split seed stays fixed)")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--json", help="also write the results to this JSON file")
parser.add_argument("--bpr-lr", type=float, nargs="+", default=[0.002, 0.005], help="BPR-MF learning rates to tune over")
parser.add_argument("--bpr-wd", type=float, nargs="+", default=[1e-5, 3e-5], help="BPR-MF L2 terms to tune over")
parser.add_argument("--runs", metavar="DIR", help=RUNS_HELP)
parser.add_argument("--skip-kgrec", action="store_true", help="baselines only (e.g. to probe the BPR-MF grid)")
parser.add_argument("--skip-bpr", action="store_true", help="no BPR-MF (with --skip-kgrec: the closed-form rows alone)")
parser.add_argument("--ease-lambda", type=float, nargs="+", default=list(EASE.REG_GRID),
                    help="EASE L2 weights to tune over on valid (default %(default)s; one value, chosen on valid "
                         "earlier, saves the other fits: about 9 minutes each at 30k items on 2 cores)")
parser.add_argument("--ease-device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="where EASE is fitted and scored (default: %(default)s; a GPU fits 30k items in seconds)")
args = parser.parse_args()

KEYS = ("ndcg@10", "recall@20", "recall@10", "ndcg@20", "hit@10", "mrr@10", "rmse", "auc")
config = load_config(args.config, [*args.overrides, "train.progress=false"])
dataset = load_data(config)
print(f"{dataset.name}: split {dataset.split}; train {len(dataset.train)}, valid {len(dataset.valid)}, "
      f"test {len(dataset.test)}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip
rows: dict[str, dict] = {}

started = time.perf_counter()
popular = MostPopular().fit(dataset.train, dataset.n_users, dataset.n_items)
rows["most-popular"] = {**evaluate_split(popular.score, dataset, "test"), "seconds": time.perf_counter() - started}

started = time.perf_counter()
ease = tune_on_valid(dataset, lambda reg: EASE(reg, args.ease_device), args.ease_lambda)
for reg, metrics in ease.valid.items():
    print(f"  EASE lambda={reg:g}: valid ndcg@10 {metrics['ndcg@10']:.4f}", flush=True)
rows[f"EASE (lambda={ease.best:g}, valid-tuned)"] = {
    **evaluate_split(ease.model.score, dataset, "test"), "seconds": time.perf_counter() - started,
}  # fmt: skip
teacher_options = (config.train.teacher_session_hours, config.train.teacher_user_weight or None, config.train.teacher_recency_hours)
if config.model.distill_weight > 0 and any(o is not None for o in teacher_options):
    # the teacher the config distils, alone: what kgrec's retrieval tower is taught to rank like
    started = time.perf_counter()
    teacher = EaseTeacher.from_config(dataset, config.train, device=args.ease_device)
    session = "" if teacher.session_hours is None else f"{teacher.session_hours:g}h-session "
    user = "" if teacher.user_model is None else " + user EASE"
    recency = "" if teacher.recency_hours is None else f", {teacher.recency_hours:g}h-recency history"
    test = evaluate_split(teacher.scores, dataset, "test")
    seconds = time.perf_counter() - started  # fit to test metrics, as EASE's row
    print(f"  teacher: {teacher.description()}: valid ndcg@10 {evaluate_split(teacher.scores, dataset, 'valid')['ndcg@10']:.4f}")
    rows[f"teacher ({session}EASE{user}{recency})"] = {**test, "seconds": seconds}


def train_once(seed: int, overrides: list[str], model: ModelConfig | None = None, base: list[str] = ()) -> dict:
    """Train one run (``base`` < ``--set`` < ``overrides``); its metrics."""
    return train_seed(args.config, seed, [*base, *args.overrides, *overrides], model, args.runs)


def run(
    name: str, overrides: list[str], model: ModelConfig | None = None, base: list[str] = (), done: dict | None = None
) -> None:
    """Train ``args.seeds`` seeds (``done``: seed 0's metrics when already trained) and add their mean row."""
    results = []
    for seed in range(args.seeds):
        metrics = done if seed == 0 and done is not None else train_once(seed, overrides, model, base)
        results.append(metrics)
        rmse = f", rmse {metrics['test']['rmse']:.4f}" if "rmse" in metrics["test"] else ""
        print(f"  {name} seed {seed}: valid ndcg@10 {metrics['valid']['ndcg@10']:.4f}, test ndcg@10 {metrics['test']['ndcg@10']:.4f}{rmse}, "
              f"{metrics['epochs']} epochs, {metrics['seconds_per_epoch']:.1f} s/epoch", flush=True)  # fmt: skip
    mean = {k: float(np.mean([r["test"][k] for r in results])) for k in results[0]["test"]}
    std = {k: float(np.std([r["test"][k] for r in results])) for k in results[0]["test"]}
    rows[name] = {**mean, "std": std, "seconds": float(np.mean([r["train_seconds"] for r in results])),
                  "seconds_per_epoch": float(np.mean([r["seconds_per_epoch"] for r in results]))}  # fmt: skip


if not args.skip_bpr:
    bpr_mf = ModelConfig.bpr_mf(dim=config.model.dim)
    # many short epochs (about 1 s each on ml-100k), one negative per row (BPR), whatever the config samples
    bpr_train = ["train.max_epochs=300", "train.patience=10", "train.shared_negatives=0"]
    bpr_grid = {(lr, wd): [f"train.lr={lr}", f"train.weight_decay={wd}"] for lr in args.bpr_lr for wd in args.bpr_wd}
    bpr_seed0 = {}  # the grid's runs are seed 0's: the chosen one is not trained again
    for (lr, wd), overrides in bpr_grid.items():
        bpr_seed0[lr, wd] = train_once(0, overrides, bpr_mf, bpr_train)
        print(f"  BPR-MF lr={lr} weight_decay={wd}: valid ndcg@10 {bpr_seed0[lr, wd]['valid']['ndcg@10']:.4f}", flush=True)
    lr, wd = max(bpr_seed0, key=lambda key: bpr_seed0[key]["valid"]["ndcg@10"])
    run(f"BPR-MF (lr={lr}, L2={wd:g}, valid-tuned)", bpr_grid[lr, wd], bpr_mf, bpr_train, done=bpr_seed0[lr, wd])
KGREC = f"kgrec ({Path(args.config).name})"
if not args.skip_kgrec:
    run(KGREC, [])

print()
width = max(42, 2 + max(map(len, rows)))  # the name column
header = f"{'model':<{width}}" + "".join(f"{k:>11}" for k in KEYS) + f"{'seconds':>10}"
print(header)
print("-" * len(header))
for name, values in rows.items():
    cells = "".join(f"{values[k]:>11.4f}" if k in values else f"{'-':>11}" for k in KEYS)
    print(f"{name:<{width}}{cells}{values['seconds']:>10.1f}")
print("seconds: most-popular, EASE and the teacher from fit to test metrics (with all their valid-tuning fits); BPR-MF and "
      "kgrec: training of the chosen setting (mean over seeds; BPR-MF's grid and kgrec's text encoding not included)")
if not args.skip_kgrec:
    kgrec_row = rows[KGREC]
    ease_row = next(v for k, v in rows.items() if k.startswith("EASE"))
    print(f"\nkgrec / EASE: ndcg@10 x{kgrec_row['ndcg@10'] / ease_row['ndcg@10']:.3f}, "
          f"recall@20 x{kgrec_row['recall@20'] / ease_row['recall@20']:.3f} (mean of {args.seeds} seed{'s' if args.seeds > 1 else ''})")  # fmt: skip
if args.json:
    write_json(args.json, rows)  # atomic; makes the folder
