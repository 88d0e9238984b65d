"""Click-through AUC on pairs labelled 0 (impressions without a click): kgrec's like tower beside
scores computed on the same split in the same run.

The data must hold rows with label 0 (README: Pairs labelled 0): real impressions, as DKN's
Bing News sample has them, or the sampled negatives RippleNet and KGCN published for
Book-Crossing:

    python scripts/prepare_dkn.py --out data/dkn
    python scripts/bench_ctr.py --config scripts/configs/dkn.yaml --data data/dkn --seeds 3
    python scripts/prepare_bookcrossing.py --negatives --out data/bookcrossing-ctr
    python scripts/bench_ctr.py --config scripts/configs/bookcrossing.yaml --data data/bookcrossing-ctr

Every row scores the same pairs: the test interactions (label 1) and the test pairs labelled 0,
of the users the ranking counts; AUC over them (valid's for choosing), with its standard error
(Hanley and McNeil, 1982: small test sets measure AUC loosely). With ratings, an interaction
rated below ``model.like_threshold`` counts as a 0, as in kgrec's like AUC. Rows:

- most-popular: the item's training interactions;
- user click rate: the user's share of clicks among their training pairs, (clicks + 1) /
  (pairs + 2), the same for every item: what the user alone tells;
- text, the user's clicks: cosine of the item's text vector (``text.model``) to the mean of the
  user's training clicks'; "minus their shown" subtracts the cosine to the mean of their
  training pairs labelled 0 (content-based scores, without training);
- EASE: its score of the pair, lambda chosen on valid AUC;
- kgrec with IDs only (no text, no graph) and kgrec with the config as it is, ``like`` added
  to its tasks: both like towers learn the training interactions against the training pairs
  labelled 0, and their epoch is chosen on valid AUC (``eval.monitor=auc``), as EASE's lambda is.
"""

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
from _bench import RUNS_HELP, SET_HELP, at_least_one, check_folder, config_file, train_seed

from kgrec.baselines import EASE, MostPopular
from kgrec.baselines.ease import check_l2
from kgrec.data import Interactions
from kgrec.errors import KgrecError
from kgrec.eval import auc, known_users_negatives, known_users_part
from kgrec.text import encode_dataset
from kgrec.train import fit_defaults, load_config, load_data
from kgrec.utils.io import write_json


def l2_weight(value: str) -> float:
    """``--ease-lambda``'s type: an L2 weight EASE can fit (positive and finite), refused by the
    parser rather than by EASE, after the data, the baselines and the text encoding."""
    weight = float(value)
    try:
        check_l2(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value}: expected a positive, finite L2 weight") from None
    return weight


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", required=True, type=config_file, help="the run config (YAML) each kgrec row is trained with")
parser.add_argument("--data", required=True, help="the dataset folder, holding rows with label 0")
parser.add_argument("--seeds", type=at_least_one, default=1, help="training seeds of each kgrec row (the split stays fixed)")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--ease-lambda", type=l2_weight, nargs="+", default=list(EASE.REG_GRID),
                    help="EASE L2 weights to choose from on valid AUC (default %(default)s); a choice at an end of "
                         "the grid is marked, as a wider one may do better")
parser.add_argument("--runs", metavar="DIR", help=RUNS_HELP)
parser.add_argument("--json", help="also write the results to this JSON file")
args = parser.parse_args()
check_folder(parser, "--data", args.data)

overrides = [f"data.path={args.data}", *args.overrides]
config = load_config(args.config, overrides)
dataset = load_data(config)
fitted = fit_defaults(config, dataset)[0].model
tasks = list(dict.fromkeys([*fitted.tasks, "like"]))


def labelled_pairs(part: str) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Users, items and labels of ``part``'s pairs, as kgrec's like AUC counts them: its
    interactions (1; with ratings, those rated below ``model.like_threshold`` 0) and its pairs
    labelled 0 (0), of the users with training interactions."""
    positive, negative = known_users_part(dataset, part), known_users_negatives(dataset, part)
    labels = torch.ones(len(positive)) if positive.rating is None else (
        torch.as_tensor(positive.rating, dtype=torch.float32) >= fitted.like_threshold).float()  # fmt: skip
    if negative is None:
        return positive.user, positive.item, labels
    return np.r_[positive.user, negative.user], np.r_[positive.item, negative.item], torch.cat([labels, torch.zeros(len(negative))])


def check_both_labels(part: str, needed_for: str) -> None:
    """Stop, in one line, where ``part``'s AUC is not defined: it needs a 1 and a 0 among its pairs."""
    labels = labelled_pairs(part)[2]
    if not labels.any():
        rated = f" rated {fitted.like_threshold:g} or more (model.like_threshold)" if dataset.train.rating is not None else ""
        missing = f"interactions{rated}"
    elif labels.all():
        missing = f"pairs labelled 0 (rows with label 0 in the {part} part)"
    else:
        return
    raise KgrecError(f"{args.data}: no {part} {missing} of users with training interactions: nothing to {needed_for}")


check_both_labels("test", "measure click-through AUC on")
check_both_labels("valid", "choose EASE's lambda and kgrec's epoch on (valid AUC)")
counts = dataset.negative_counts()
print(f"{dataset.name}: split {dataset.split}; interactions train {len(dataset.train)}, valid {len(dataset.valid)}, "
      f"test {len(dataset.test)}; labelled 0 train {counts.get('train', 0)}, valid {counts.get('valid', 0)}, "
      f"test {counts.get('test', 0)}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip


def pair_auc(score_rows: Callable[[torch.Tensor], torch.Tensor], part: str, chunk: int = 1024) -> float:
    """AUC of ``score_rows`` (users -> ``(B, I)`` scores) on ``part``'s labelled pairs."""
    users, items, labels = labelled_pairs(part)
    scores = torch.empty(len(users))
    for start in range(0, len(users), chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        rows, at = np.unique(u, return_inverse=True)
        scores[start : start + chunk] = score_rows(torch.as_tensor(rows))[torch.as_tensor(at), torch.as_tensor(i)].float()
    return auc(scores, labels)


def auc_standard_error(value: float, labels: torch.Tensor) -> float:
    """Hanley and McNeil's (1982) standard error of an AUC ``value`` over pairs with ``labels``:
    :math:`\\sqrt{(A(1-A) + (n_1-1)(Q_1-A^2) + (n_0-1)(Q_2-A^2)) / (n_1 n_0)}` with
    :math:`Q_1 = A/(2-A)`, :math:`Q_2 = 2A^2/(1+A)`, :math:`n_1` positives and :math:`n_0` negatives."""
    n1, n0, a = float(labels.sum()), float(len(labels) - labels.sum()), value
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return float(np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)))


def fixed_row(score_rows: Callable[[torch.Tensor], torch.Tensor], started: float) -> dict[str, float]:
    """A row of scores that take no choosing: its valid and test AUC and the seconds since ``started``."""
    return {"valid": pair_auc(score_rows, "valid"), "test": pair_auc(score_rows, "test"), "seconds": time.perf_counter() - started}


def user_profile(part_pairs: Interactions, vectors: torch.Tensor) -> torch.Tensor:
    """``(U, d)`` unit mean of each user's vectors over ``part_pairs`` (zero without any)."""
    summed = torch.zeros(dataset.n_users, vectors.shape[1]).index_add_(0, torch.as_tensor(part_pairs.user), vectors[part_pairs.item])
    return torch.nn.functional.normalize(summed, dim=1)


results: dict[str, dict] = {}
started = time.perf_counter()
popular = MostPopular().fit(dataset.train, dataset.n_users, dataset.n_items)
results["most-popular"] = fixed_row(popular.score, started)

started = time.perf_counter()
clicks = np.bincount(dataset.train.user, minlength=dataset.n_users)
shown = np.bincount(dataset.train_negatives.user if dataset.train_negatives is not None else [], minlength=dataset.n_users)
click_rate = torch.as_tensor((clicks + 1) / (clicks + shown + 2), dtype=torch.float32)
results["user click rate"] = fixed_row(lambda users: click_rate[users, None].expand(len(users), dataset.n_items), started)

if config.model.use_text:
    started = time.perf_counter()
    text = torch.nn.functional.normalize(encode_dataset(dataset, config.text, progress=False).float(), dim=1)  # (I, d)
    liked = user_profile(dataset.train, text)
    results["text, the user's clicks"] = fixed_row(lambda users: liked[users] @ text.T, started)
    if dataset.train_negatives is not None and len(dataset.train_negatives):
        unliked = user_profile(dataset.train_negatives, text)
        results["text, the user's clicks minus their shown"] = fixed_row(lambda users: (liked[users] - unliked[users]) @ text.T, started)

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

for name, extra in (("kgrec, IDs only", ["model.use_item_id=true", "model.use_text=false", "model.use_graph=false",
                                         "model.id_dropout=0", "model.like_text_affinity=false",
                                         f"model.tasks=[{','.join(t for t in tasks if t != 'kg')}]"]),
                    ("kgrec (config as it is, like added)", [f"model.tasks=[{','.join(tasks)}]"])):  # fmt: skip
    runs = []
    for seed in range(args.seeds):
        chosen = "eval.monitor=auc"  # the epoch chosen on valid AUC, as EASE's lambda is
        metrics = train_seed(args.config, seed, [*overrides, *extra, chosen], runs=args.runs)
        # training time as the run recorded it (a run kept under --runs is read back, not retrained)
        runs.append({"valid": metrics["valid"]["auc"], "test": metrics["test"]["auc"], "seconds": metrics["train_seconds"]})
        print(f"  {name} seed {seed}: valid auc {runs[-1]['valid']:.4f}, test auc {runs[-1]['test']:.4f}, "
              f"{metrics['epochs']} epochs")  # fmt: skip
    results[name] = {key: float(np.mean([r[key] for r in runs])) for key in ("valid", "test", "seconds")}

print(f"\n{'model':<45} {'valid auc':>10} {'test auc':>10} {'test se':>8} {'seconds':>10}\n{'-' * 87}")
test_labels = labelled_pairs("test")[2]
for name, row in results.items():
    row["test_se"] = auc_standard_error(row["test"], test_labels)
    print(f"{name:<45} {row['valid']:>10.4f} {row['test']:>10.4f} {row['test_se']:>8.4f} {row['seconds']:>10.1f}")
print(f"test se: Hanley-McNeil standard error of the test AUC ({len(test_labels)} pairs); seconds: fits "
      f"(EASE: its whole lambda grid) and training (kgrec: mean over {args.seeds} seed(s)), without loading")
if args.json:
    write_json(args.json, {"dataset": dataset.name, "split": dataset.split, "tasks": tasks, "results": results})
