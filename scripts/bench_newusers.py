"""New users: train without a share of the users, give each one part of their history as liked
items, rank the rest (ml-100k by default, any dataset through ``--config``).

Protocol (strong generalisation, as in Liang et al., "Variational Autoencoders for Collaborative
Filtering", WWW 2018). The users are dealt at random (``data.seed``) into ``--folds`` folds; for
each fold a model is trained on a copy of the dataset without that fold's users (their ``.inter``
and ``.user`` rows), with the config's usual split, so training never sees them. Each held-out
user's interactions are shuffled; the first ``--given`` share (80%) is what the user tells the
recommender (``kgrec recommend --liked``, every interaction of the given part, whatever its
rating), the rest are the targets. Ranking is over the run's whole catalogue without the given
items; interactions with items the run never saw (only the fold's users had them) are dropped.

Rows, all from the same given items:

* **kgrec, history pathway**: what ``recommend --liked`` does with the default ``id+history``
  user encoder (:meth:`Recommender.new_user_vector`): the user trunk over the mean of the given
  items' fused vectors (a trained user's ID vector is missing, so that part is zero), plain or
  shrunk toward the mean training user with the weight chosen on the run's valid split
  (:meth:`Recommender.new_user_prior`, which ``recommend --liked`` uses; the bench prints the
  weight, and which row ``recommend --liked`` gave: the plain mean when the chosen weight is 0).
* **kgrec, fold-in**: :meth:`Recommender.fold_in`, the vector that best explains the given items
  under a softmax over the frozen item vectors (what a run with an ID-only user encoder does).
* **EASE**, fitted on the run's training split (lambda chosen on its valid split): scores
  :math:`x B` for the given items :math:`x`. EASE is item-item, so it folds a new user in exactly.
* **EASE refit with the new users' given items** in its Gram matrix: what retraining would give
  EASE (a reference, not a new-user method).
* **most-popular** (the run's training split).

The second table gives only the first ``n`` given items (n = 1, 2, 5, 10), every other item of
the user being a target: how much a new user must tell before the recommendations are worth
having.

    python scripts/bench_newusers.py                      # 5 folds, every user new once (trains 5 runs)
    python scripts/bench_newusers.py --folds 5 --only 0   # one fold (a fifth of the users)
    python scripts/bench_newusers.py --config scripts/configs/ml-1m.yaml --out runs/ml-1m-newusers
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, SET_HELP, config_file, copy_without, kept_run_dir

from kgrec.baselines import EASE, MostPopular, tune_on_valid
from kgrec.data import SplitConfig, fetch, load_dataset
from kgrec.data.dataset import Interactions
from kgrec.eval import evaluate_ranking
from kgrec.eval.matrix import interaction_matrix
from kgrec.retrieval import Recommender

FEW = (1, 2, 5, 10)


def deal_users(users: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """The users (raw ids) dealt at random into ``folds`` folds of (nearly) equal size."""
    return np.array_split(np.random.default_rng(seed).permutation(users), folds)


def given_and_targets(
    user: np.ndarray, item: np.ndarray, share: float, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per user (in order of first appearance in ``np.unique(user)``), a random ``share`` of their
    items (at least one) as the given list, in shuffled order, and the rest as targets."""
    rng = np.random.default_rng(seed)
    given, targets = [], []
    for u in np.unique(user):
        items = rng.permutation(item[user == u])
        n = max(1, int(round(share * len(items))))
        given.append(items[:n])
        targets.append(items[n:])
    return given, targets


def ranking(scores: np.ndarray, given: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
    """NDCG@10, Recall@20, NDCG@20 of a dense ``(users, items)`` score matrix, given items excluded."""
    rows = np.repeat(np.arange(len(targets)), [len(t) for t in targets])
    target = Interactions(rows, np.concatenate(targets).astype(np.int64))
    seen = Interactions(np.repeat(np.arange(len(given)), [len(g) for g in given]), np.concatenate(given).astype(np.int64))
    matrix = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))
    out = evaluate_ranking(lambda b: matrix[b], target, seen, *scores.shape, (10, 20))
    return {k: out[k] for k in ("ndcg@10", "recall@20", "ndcg@20")}


def user_lists(lists: list[np.ndarray], n_items: int) -> torch.Tensor:
    """Dense binary ``(len(lists), n_items)`` matrix of per-user item lists."""
    rows = np.repeat(np.arange(len(lists)), [len(g) for g in lists])
    return interaction_matrix(Interactions(rows, np.concatenate(lists)), len(lists), n_items).to_dense()


def evaluate_fold(
    rec: Recommender, given: list[np.ndarray], targets: list[np.ndarray]
) -> tuple[dict[str, dict[str, float]], dict[tuple[str, int], dict[str, float]]]:
    """The rows of both tables (module docstring) for one fold's new users."""
    ds = rec.run.dataset
    n_items, tokens = ds.n_items, rec.catalog.tokens
    items = rec.catalog.vectors[:n_items]

    model = rec.run.model
    started = time.perf_counter()
    choice = rec.new_user_prior()
    print(f"  prior weight k = {choice.prior.weight:g} items, chosen on {choice.users} simulated new users' valid items "
          f"in {time.perf_counter() - started:.1f} s; NDCG@10 per k: "
          + ", ".join(f"{k:g}: {v:.4f}" for k, v in choice.ndcg.items()), flush=True)  # fmt: skip
    with torch.no_grad():
        encoded = model.encode()

    def kgrec(lists: list[np.ndarray], with_prior: bool) -> np.ndarray:  # the history pathway
        prior = choice.prior if with_prior else None
        with torch.no_grad():
            users = [model.new_user_vector(encoded.items[torch.as_tensor(g)], prior) for g in lists]
        return torch.cat(users).numpy() @ items.T

    ease = tune_on_valid(ds, EASE, EASE.REG_GRID).model
    x = user_lists(given, n_items)
    added = x.nonzero().numpy()
    refit = EASE(ease.reg).fit(
        Interactions.concat([ds.train, Interactions(added[:, 0] + ds.n_users, added[:, 1])]), ds.n_users + len(given), n_items
    )  # fmt: skip
    popular = MostPopular().fit(ds.train, ds.n_users, n_items).score(torch.zeros(1, dtype=torch.long)).numpy()
    started = time.perf_counter()
    served = np.stack([rec.new_user_vector([tokens[i] for i in g]) for g in given]) @ items.T  # recommend --liked
    print(f"  recommend --liked: {1000 * (time.perf_counter() - started) / len(given):.1f} ms per new user", flush=True)
    methods = {
        "kgrec, history pathway, plain mean": kgrec(given, with_prior=False),
        "kgrec, history pathway, with the prior (k chosen on valid)": kgrec(given, with_prior=True),
        "kgrec, fold-in (softmax over frozen items)": np.stack([rec.fold_in(g) for g in given]) @ items.T,
        f"EASE (lambda={ease.reg:g}, valid-tuned), given items": (x @ ease.weight).numpy(),
        "EASE refit with the given items (retraining)": (x @ refit.weight).numpy(),
        "most-popular": np.repeat(popular, len(given), 0),
    }
    uses = next(name for name, scores in list(methods.items())[:2] if np.allclose(scores, served, atol=1e-4))
    print(f"  recommend --liked is the row '{uses}'", flush=True)
    table = {name: ranking(scores, given, targets) for name, scores in methods.items()}
    few = {}
    for n in FEW:  # the user tells n items; the targets are all their others
        first = [g[:n] for g in given]
        rest = [np.concatenate([g[n:], t]) for g, t in zip(given, targets, strict=True)]
        few["kgrec, plain mean", n] = ranking(kgrec(first, with_prior=False), first, rest)
        few["kgrec, with the prior", n] = ranking(kgrec(first, with_prior=True), first, rest)
        few["EASE", n] = ranking((user_lists(first, n_items) @ ease.weight).numpy(), first, rest)
        few["most-popular", n] = ranking(np.repeat(popular, len(first), 0), first, rest)
    return table, few


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/ml-100k-newusers"), help="data copies + runs (reused)")
    parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
    parser.add_argument("--folds", type=int, default=5, help="user folds; each is held out of one training run")
    parser.add_argument("--only", type=int, nargs="+", help="run these folds only (0-based; default all)")
    parser.add_argument("--given", type=float, default=0.8, help="share of a new user's interactions given as liked")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    args = parser.parse_args()
    if args.folds < 2 or not 0 < args.given < 1:
        parser.error("--folds must be at least 2 and --given in (0, 1)")
    if any(not 0 <= k < args.folds for k in args.only or []):
        parser.error(f"--only {args.only}: folds are numbered 0 to {args.folds - 1}")
    torch.set_num_threads(args.threads)
    from kgrec.train import load_config, train

    config = load_config(args.config, ["train.progress=false", *args.overrides])
    source = Path(config.data.path) if config.data.path else fetch(config.data.name)
    every = (full := load_dataset(source, SplitConfig(seed=config.data.seed))).interactions()  # every part
    user_tokens = np.asarray([str(u) for u in full.users])
    item_tokens = np.asarray([str(i) for i in full.items])
    folds = deal_users(user_tokens[np.unique(every.user)], args.folds, config.data.seed)
    chosen = args.only if args.only is not None else list(range(args.folds))

    tables, fews, weights = [], [], []
    for k in chosen:
        held = set(folds[k].tolist())
        data = copy_without(source, args.out / f"fold{k}" / "data" / source.name, "user_id", held, (".inter", ".user"))
        fold_config = load_config(args.config, ["train.progress=false", *args.overrides, f"data.path={data}"])
        run = kept_run_dir(fold_config, args.out / f"fold{k}")
        if (run / "manifest.json").is_file():
            print(f"fold {k}: reusing {run}")
        else:
            print(f"fold {k}: training {run} without {len(held)} users ...", flush=True)
            started = time.perf_counter()
            train(fold_config, run)
            print(f"fold {k}: trained in {time.perf_counter() - started:.0f} s", flush=True)
        rec = Recommender.open(run)
        if held & {str(u) for u in rec.run.dataset.users}:
            raise SystemExit(f"{run} was trained on users of fold {k}; delete it")
        position = {str(t): i for i, t in enumerate(rec.run.dataset.items)}
        of_fold = np.isin(user_tokens[every.user], list(held))
        known = of_fold & np.isin(item_tokens[every.item], list(position))
        items = np.asarray([position[t] for t in item_tokens[every.item[known]]], np.int64)
        given, targets = given_and_targets(every.user[known], items, args.given, config.data.seed + k)
        keep = [i for i, t in enumerate(targets) if len(t)]
        given, targets = [given[i] for i in keep], [targets[i] for i in keep]
        print(f"fold {k}: {len(keep)} new users, {sum(map(len, given))} given and {sum(map(len, targets))} target "
              f"interactions ({int((of_fold & ~known).sum())} with items the run never saw dropped)", flush=True)  # fmt: skip
        table, few = evaluate_fold(rec, given, targets)
        tables.append(table)
        fews.append(few)
        weights.append(len(keep))

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads; "
          f"config {args.config}; folds {chosen} of {args.folds}; {sum(weights)} new users; given share {args.given}\n")  # fmt: skip
    w = np.asarray(weights, float) / sum(weights)

    def mean(results: list[dict[str, float]], key: str) -> float:  # users-weighted mean over the folds
        return float(np.dot(w, [r[key] for r in results]))

    print("| method | NDCG@10 | Recall@20 | NDCG@20 | NDCG@10 per fold |")
    print("|---|---|---|---|---|")
    for name in tables[0]:
        # EASE's lambda may differ between folds: match its row by position
        results = [list(t.values())[list(tables[0]).index(name)] for t in tables]
        per_fold = " / ".join(f"{r['ndcg@10']:.4f}" for r in results)
        print(f"| {name} | {mean(results, 'ndcg@10'):.4f} | {mean(results, 'recall@20'):.4f} | "
              f"{mean(results, 'ndcg@20'):.4f} | {per_fold} |")  # fmt: skip
    print("\nthe first n given items only, every other item of the user a target: NDCG@10 / Recall@20\n")
    print("| method | " + " | ".join(f"n = {n}" for n in FEW) + " |")
    print("|---|" + "---|" * len(FEW))
    for name in ("kgrec, plain mean", "kgrec, with the prior", "EASE", "most-popular"):
        cells = [f"{mean([f[name, n] for f in fews], 'ndcg@10'):.4f} / {mean([f[name, n] for f in fews], 'recall@20'):.4f}" for n in FEW]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
