"""Click-through AUC on pairs labelled 0 (impressions without a click): kgrec's like tower beside
scores computed on the same split in the same run.

The data must hold rows with label 0 (README: Pairs labelled 0), e.g. Book-Crossing as RippleNet
and KGCN published it, with its sampled negatives:

    python scripts/prepare_bookcrossing.py --negatives --out data/bookcrossing-ctr
    python scripts/bench_ctr.py --config scripts/configs/bookcrossing.yaml --data data/bookcrossing-ctr

Every row scores the same pairs: the test interactions (label 1) and the test pairs labelled 0,
of the users the ranking counts; AUC over them (valid's for choosing). Rows: most-popular (the
item's training interactions), EASE (its score of the pair; lambda chosen on valid AUC), kgrec
with IDs only (no text, no graph) and kgrec with the config as it is, ``like`` added to its
tasks: both like towers learn the training interactions against the training pairs labelled 0,
and their epoch is chosen on valid AUC (``eval.monitor=auc``), as EASE's lambda is.
"""

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
from _bench import RUNS_HELP, SET_HELP, at_least_one, check_folder, config_file, train_seed

from kgrec.baselines import EASE, MostPopular
from kgrec.errors import KgrecError
from kgrec.eval import auc, known_users_negatives, known_users_part
from kgrec.train import fit_defaults, load_config, load_data
from kgrec.utils.io import write_json

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", required=True, type=config_file, help="the run config (YAML) each kgrec row is trained with")
parser.add_argument("--data", required=True, help="the dataset folder, holding rows with label 0")
parser.add_argument("--seeds", type=at_least_one, default=1, help="training seeds of each kgrec row (the split stays fixed)")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--ease-lambda", type=float, nargs="+", default=list(EASE.REG_GRID),
                    help="EASE L2 weights to choose from on valid AUC (default %(default)s); a choice at an end of "
                         "the grid is marked, as a wider one may do better")
parser.add_argument("--runs", metavar="DIR", help=RUNS_HELP)
parser.add_argument("--json", help="also write the results to this JSON file")
args = parser.parse_args()
check_folder(parser, "--data", args.data)

overrides = [f"data.path={args.data}", *args.overrides]
config = load_config(args.config, overrides)
dataset = load_data(config)
if dataset.test_negatives is None or not len(dataset.test_negatives):
    raise KgrecError(f"{args.data}: no test pairs labelled 0 (rows with label 0 in the test part): "
                     "nothing to measure click-through AUC on")  # fmt: skip
tasks = list(dict.fromkeys([*fit_defaults(config, dataset)[0].model.tasks, "like"]))
print(f"{dataset.name}: split {dataset.split}; interactions train {len(dataset.train)}, valid {len(dataset.valid)}, "
      f"test {len(dataset.test)}; labelled 0 train {len(dataset.train_negatives)}, valid {len(dataset.valid_negatives)}, "
      f"test {len(dataset.test_negatives)}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip


def labelled_pairs(part: str) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Users, items and labels of ``part``'s interactions (1) and pairs labelled 0 (0)."""
    positive, negative = known_users_part(dataset, part), known_users_negatives(dataset, part)
    labels = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))])
    return np.r_[positive.user, negative.user], np.r_[positive.item, negative.item], labels


def pair_auc(score_rows: Callable[[torch.Tensor], torch.Tensor], part: str, chunk: int = 1024) -> float:
    """AUC of ``score_rows`` (users -> ``(B, I)`` scores) on ``part``'s labelled pairs."""
    users, items, labels = labelled_pairs(part)
    scores = torch.empty(len(users))
    for start in range(0, len(users), chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        rows, at = np.unique(u, return_inverse=True)
        scores[start : start + chunk] = score_rows(torch.as_tensor(rows))[torch.as_tensor(at), torch.as_tensor(i)].float()
    return auc(scores, labels)


results: dict[str, dict] = {}
started = time.perf_counter()
popular = MostPopular().fit(dataset.train, dataset.n_users, dataset.n_items)
results["most-popular"] = {"valid": pair_auc(popular.score, "valid"), "test": pair_auc(popular.score, "test"),
                           "seconds": time.perf_counter() - started}  # fmt: skip

started, best = time.perf_counter(), None
for reg in args.ease_lambda:
    ease = EASE(reg).fit(dataset.train, dataset.n_users, dataset.n_items)
    valid = pair_auc(ease.score, "valid")
    print(f"  EASE lambda={reg:g}: valid auc {valid:.4f}")
    if best is None or valid > best[0]:
        best = (valid, reg, pair_auc(ease.score, "test"))
    del ease
assert best is not None
edge = ", grid end" if len(args.ease_lambda) > 1 and best[1] in (min(args.ease_lambda), max(args.ease_lambda)) else ""
results[f"EASE (lambda={best[1]:g}, valid-tuned{edge})"] = {"valid": best[0], "test": best[2],
                                                           "seconds": time.perf_counter() - started}  # fmt: skip

for name, extra in (("kgrec, IDs only", ["model.use_text=false", "model.use_graph=false", "model.id_dropout=0",
                                         f"model.tasks=[{','.join(t for t in tasks if t != 'kg')}]"]),
                    ("kgrec (config as it is, like added)", [f"model.tasks=[{','.join(tasks)}]"])):  # fmt: skip
    runs = []
    for seed in range(args.seeds):
        started = time.perf_counter()
        chosen = "eval.monitor=auc"  # the epoch chosen on valid AUC, as EASE's lambda is
        metrics = train_seed(args.config, seed, [*overrides, *extra, chosen], runs=args.runs)
        runs.append({"valid": metrics["valid"]["auc"], "test": metrics["test"]["auc"], "seconds": time.perf_counter() - started})
        print(f"  {name} seed {seed}: valid auc {runs[-1]['valid']:.4f}, test auc {runs[-1]['test']:.4f}, "
              f"{metrics['epochs']} epochs")  # fmt: skip
    results[name] = {key: float(np.mean([r[key] for r in runs])) for key in ("valid", "test", "seconds")}

print(f"\n{'model':<45} {'valid auc':>10} {'test auc':>10} {'seconds':>10}\n{'-' * 78}")
for name, row in results.items():
    print(f"{name:<45} {row['valid']:>10.4f} {row['test']:>10.4f} {row['seconds']:>10.1f}")
print(f"seconds: fits (EASE: its whole lambda grid) and training (kgrec: mean over {args.seeds} seed(s)), without loading")
if args.json:
    write_json(args.json, {"dataset": dataset.name, "split": dataset.split, "tasks": tasks, "results": results})
