"""How well `similar` lists items like a given one, beside other ways of making the list.

Protocol. For each user with held-out items in the validation (then the test) part, up to 3 of
their liked training items (rating >= the model's like threshold, when the data has ratings)
are anchors. Each method lists 10 items for an anchor, leaving out the anchor and the user's
known items (training, and validation when testing); a list scores when it holds the user's
held-out items:

* hit@10: the share of lists holding at least one;
* PS-recall@10: popularity-stratified recall (Steck, RecSys 2011), each held-out item weighted
  by 1/sqrt(its training popularity), so that listing the most popular items for every
  anchor, which a plain hit rate rewards, earns little;
* coverage: distinct items over all lists; median popularity of the listed items.

Rows: `similar` (cosine of the retrieval vectors centred on the trained items' mean, checked
against `Recommender.similar` itself); the plain cosine of those vectors (`similar` before it
centred them; the script first prints how much the vectors share their mean's direction);
item-KNN (cosine of items' training interaction columns, the classic "users who liked this
also liked"); a new user who liked only the anchor (`recommend_for_new_user`, an asymmetric
"what to see next"; with a ``history`` user encoder also without the prior toward the mean
training user, the plain mean); the text encoder's cosine (text alone), when the run has text; most
popular; random. Anchors are drawn with a fixed seed.
The choice of the centred cosine was made on the validation table.

    python scripts/bench_similar.py runs/ml-100k [more run folders ...]
"""

import argparse
import platform
import sys
from collections.abc import Callable

import numpy as np
import torch
from _bench import at_least_one, check_runs, one_line_errors

from kgrec.data import Interactions
from kgrec.eval.matrix import dense_rows, interaction_matrix
from kgrec.retrieval import Recommender

sys.excepthook = one_line_errors  # bad input met while running (a run without vectors): one line, status 2

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("runs", nargs="+", help="run folders written by `kgrec train`")
parser.add_argument("--anchors", type=at_least_one, default=6000, help="at most this many anchors per part")
parser.add_argument("--per-user", type=at_least_one, default=3, help="anchors per user")
parser.add_argument("-k", type=at_least_one, default=10, help="list length")
args = parser.parse_args()
check_runs(parser, *args.runs)  # all of them, before the first one's tables


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Matrix:
    """A binary user x item matrix (repeated interactions count once), sliced into dense rows."""

    def __init__(self, parts: list[Interactions], n_users: int, n_items: int) -> None:
        self.csr = interaction_matrix(parts, n_users, n_items)  # torch sparse CSR
        self.columns = interaction_matrix(
            [Interactions(user=p.item, item=p.user) for p in parts], n_items, n_users
        )  # item x user
        self.popularity = np.diff(self.columns.crow_indices().numpy()).astype(np.float32)  # (I,)
        self.has_rows = np.diff(self.csr.crow_indices().numpy()) > 0  # (U,)

    def rows(self, users: np.ndarray) -> np.ndarray:
        return dense_rows(self.csr, torch.from_numpy(users), dtype=torch.bool).numpy()

    def co_counts(self, items: np.ndarray) -> np.ndarray:
        """``(B, I)``: users who interacted with both each of ``items`` and each item."""
        users_of = dense_rows(self.columns, torch.from_numpy(items))  # (B, U)
        return torch.sparse.mm(self.columns, users_of.T).T.numpy()  # (B, I)


def methods(rec: Recommender, train: Matrix) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> scores ``(B, I)`` for anchor positions ``(B,)``."""
    vectors = rec.catalog.vectors
    centred, plain = unit(vectors - rec.item_centre), unit(vectors)
    popularity = train.popularity
    norms = np.sqrt(np.maximum(popularity, 1e-12))
    tokens = rec.catalog.tokens
    rows = {
        "similar (centred cosine)": lambda a: centred[a] @ centred.T,
        "plain cosine (before)": lambda a: plain[a] @ plain.T,
        "item-KNN co-occurrence cosine": lambda a: train.co_counts(a) / norms[a, None] / norms[None],
        "new user who liked the anchor": lambda a: np.stack([rec.new_user_vector([tokens[i]]) for i in a]) @ vectors.T,
    }
    model = rec.run.model
    if "history" in model.config.user_parts:  # recommend --liked shrinks toward the mean user; without it:
        with torch.no_grad():
            fused = model.encode().items

        @torch.no_grad()
        def plain_mean(a: np.ndarray) -> np.ndarray:
            return torch.cat([model.new_user_vector(fused[[int(i)]]) for i in a]).numpy() @ vectors.T

        rows["the same, plain mean (k = 0)"] = plain_mean
    if rec.run.text is not None:
        text = unit(rec.run.text.numpy())
        rows["text-encoder cosine"] = lambda a: text[a] @ text.T
    rows["most popular"] = lambda a: np.tile(popularity, (len(a), 1)).astype(np.float32)
    noise = np.random.default_rng(0).random(vectors.shape[0]).astype(np.float32)
    rows["random"] = lambda a: np.stack([np.roll(noise, 7919 * int(i)) for i in a])
    return rows


def anchors(rec: Recommender, truth: Matrix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(users, anchor items): up to ``--per-user`` liked training items of each user with held-out items."""
    train = rec.run.dataset.train
    liked = np.ones(len(train.user), bool)
    if train.rating is not None:
        liked = train.rating >= rec.run.model.config.like_threshold
    order = np.argsort(train.user, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(train.user, minlength=len(truth.has_rows)))])
    users, items = [], []
    for u in np.flatnonzero(truth.has_rows):
        rows = order[starts[u] : starts[u + 1]]
        mine = np.unique(train.item[rows[liked[rows]]])
        pick = rng.choice(mine, size=min(args.per_user, len(mine)), replace=False)
        users += [u] * len(pick)
        items += list(pick)
    users, items = np.asarray(users), np.asarray(items)
    if len(users) > args.anchors:
        keep = np.sort(rng.choice(len(users), args.anchors, replace=False))
        users, items = users[keep], items[keep]
    return users, items


def check_against_similar(rec: Recommender, score: Callable[[np.ndarray], np.ndarray], items: np.ndarray) -> None:
    """The bench's centred cosine lists what ``Recommender.similar`` lists (no user exclusions)."""
    for i in items[:20]:
        s = score(np.asarray([i]))[0]
        s[i] = -np.inf
        expected = [rec.catalog.tokens[j] for j in np.argsort(-s, kind="stable")[: args.k]]
        got = [r.item_id for r in rec.similar(rec.catalog.tokens[i], k=args.k, explain=False)]
        assert got == expected, (rec.catalog.tokens[i], got, expected)


def table(rec: Recommender, part: str, train: Matrix, rows: dict[str, Callable[[np.ndarray], np.ndarray]]) -> None:
    ds = rec.run.dataset
    known = Matrix([ds.train] + ([ds.valid] if part == "test" else []), ds.n_users, ds.n_items)
    truth = Matrix([getattr(ds, part)], ds.n_users, ds.n_items)
    popularity = train.popularity
    weight = 1.0 / np.sqrt(np.maximum(popularity, 1.0))
    users, items = anchors(rec, truth, np.random.default_rng(2026))
    check_against_similar(rec, rows["similar (centred cosine)"], items)
    print(f"\n{rec.path} ({ds.n_items} items): truth = {part} items, {len(users)} anchors from {len(np.unique(users))} users")
    print(f"{'method':<32}{'hit@10':>8}{'x plain':>9}{'PS-recall@10':>14}{'x plain':>9}{'coverage':>10}{'med. pop':>10}")
    measured = {}
    for name, score in rows.items():
        hits, ps, listed = 0.0, 0.0, []
        for start in range(0, len(users), 256):
            u, a = users[start : start + 256], items[start : start + 256]
            s = score(a).astype(np.float32)
            s[np.arange(len(a)), a] = -np.inf
            s[known.rows(u)] = -np.inf
            top = np.argpartition(-s, args.k, axis=1)[:, : args.k]
            held = truth.rows(u)
            hit = np.take_along_axis(held, top, 1)
            best = -np.sort(-np.where(held, weight, 0.0), axis=1)[:, : args.k].sum(1)  # the ideal list's weight
            hits += hit.any(1).sum()
            ps += ((weight[top] * hit).sum(1) / best).sum()
            listed.append(top.ravel())
        listed = np.concatenate(listed)
        measured[name] = (hits / len(users), ps / len(users), len(np.unique(listed)), np.median(popularity[listed]))
    plain = measured["plain cosine (before)"]
    for name, (hit_rate, ps_recall, coverage, median) in measured.items():
        print(f"{name:<32}{hit_rate:>8.4f}{hit_rate / plain[0]:>9.3f}{ps_recall:>14.4f}{ps_recall / plain[1]:>9.3f}"
              f"{coverage:>10}{median:>10.0f}")  # fmt: skip

print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")
for run in args.runs:
    rec = Recommender.open(run)
    vectors = rec.catalog.vectors[: rec.catalog.n_base]
    shared = np.linalg.norm(vectors.mean(0)) / np.linalg.norm(vectors, axis=1).mean()
    print(f"\n{run}: the trained item vectors' mean is {shared:.2f} as long as an average item vector; "
          f"two items' plain cosine is {np.square(unit(vectors).mean(0)).sum():.2f} on average")  # fmt: skip
    train = Matrix([rec.run.dataset.train], rec.run.dataset.n_users, rec.run.dataset.n_items)
    rows = methods(rec, train)  # the same lists for both parts; only anchors and truth differ
    for part in ("valid", "test"):
        table(rec, part, train, rows)
