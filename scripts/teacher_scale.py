"""How sharp is the EASE teacher's distribution at a given temperature, per dataset?

The distillation term (``model.distill_weight``) matches softmax(t_u / T) over the items user u
has not interacted with, t_u being the teacher's scores: the teacher the config's ``train.teacher_*``
fields describe (session weighting, user EASE, recency), measured on its raw scores. T is
absolute, so what it does depends on the scale of those scores, which differs between datasets
and teachers. For a sample of users this prints the
median per-user standard deviation of the teacher's scores, and the effective number of items
the softmax spreads over, exp(entropy), for the 10th percentile, median and 90th percentile of
users: a few dozen means the teacher names what it prefers; the size of the catalogue means a
uniform target, which teaches nothing. It also counts the users whose scores are equal for every
item (their training items co-occur with nothing): theirs is uniform at any temperature.

    python scripts/teacher_scale.py --temperature 0.02 0.05 --perplexity 15   # ml-100k.yaml's teacher
    python scripts/teacher_scale.py --set data.split=temporal   # the same teacher on a leave-last-out split
    python scripts/teacher_scale.py --reg 500 --set train.teacher_session_hours=null \
        --set train.teacher_user_weight=0 --set train.teacher_recency_hours=null   # EASE alone
    python scripts/teacher_scale.py --config scripts/configs/bookcrossing.yaml --reg 100 --temperature 0.05 0.001
    python scripts/teacher_scale.py --standardize --temperature 0.5 1   # train.teacher_standardize=true

With --perplexity N it also prints the per-user temperatures that train.teacher_perplexity=N
gives (each user's target spreads over N items): how far one temperature is from fitting all.
"""

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from kgrec.train import load_config, load_data
from kgrec.train.teacher import EaseTeacher, calibrate_perplexity, ranked_mean_std, softmax_entropy

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"))
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
parser.add_argument("--reg", type=float, default=None, help="EASE's L2 weight (default: the config's train.teacher_reg)")
parser.add_argument("--temperature", type=float, nargs="+", default=[0.05], help="temperatures to measure")
parser.add_argument("--standardize", action="store_true", help="per-user standardised scores (train.teacher_standardize)")
parser.add_argument("--perplexity", type=float, nargs="*", default=[], help="targets of N items to calibrate")
parser.add_argument("--users", type=int, default=2000, help="users sampled (seed 0)")
args = parser.parse_args()

config = load_config(args.config, ["train.progress=false", *args.overrides])
dataset = load_data(config)
teacher = EaseTeacher.from_config(dataset, replace(  # raw (or --standardize) scores, uncalibrated: what is measured
    config.train, teacher_perplexity=None, teacher_reg=config.train.teacher_reg if args.reg is None else args.reg,
    teacher_standardize=args.standardize,
))  # fmt: skip
users = torch.randperm(dataset.n_users, generator=torch.Generator().manual_seed(0))[: args.users]
scores = teacher.scores(users)  # (B, I), -inf on each user's training items
_, std = ranked_mean_std(scores)
flat = int((std.squeeze(-1) == 0).sum())  # every ranked item scored alike: a uniform target at any T
print(f"{dataset.name}: {dataset.n_items} items, teacher {teacher.description()}, {len(users)} users, "
      f"{'standardised' if args.standardize else 'raw'} scores; "
      f"per-user score std (median) {float(std.median()):.5f}; "
      f"{flat} users ({flat / len(users):.1%}) with equal scores for every item")  # fmt: skip
print("| temperature | effective items exp(H): 10% of users | median | 90% | top-1 probability (median) |")
print("|---:|---:|---:|---:|---:|")
for temperature in args.temperature:
    logits = scores / temperature
    q10, q50, q90 = softmax_entropy(logits).exp().quantile(torch.tensor([0.1, 0.5, 0.9])).tolist()
    top1 = float(logits.softmax(-1).max(-1).values.median())
    print(f"| {temperature:g} | {q10:.1f} | {q50:.1f} | {q90:.1f} | {top1:.5f} |")
if args.perplexity:
    print("\n| perplexity N | per-user temperature 1/beta: 10% | median | 90% |")
    print("|---:|---:|---:|---:|")
for n in args.perplexity:
    t10, t50, t90 = (1 / calibrate_perplexity(scores, n)).quantile(torch.tensor([0.1, 0.5, 0.9])).tolist()
    print(f"| {n:g} | {t10:.5g} | {t50:.5g} | {t90:.5g} |")
