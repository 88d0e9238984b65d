"""Does a learned reranker over many signals beat kgrec's teacher on ml-100k? (stacking, learning to rank)

The linear models of ``scripts/bench_linear.py`` each read one signal. The next thing a
practitioner tries is stacking: take the teacher's top-N candidates for each user and rerank them
with a model that reads everything the data holds about the pair (u, j):

    item, session-weighted and user EASE scores and their blend (the teacher), the teacher's rank,
    item popularity, the user's number of interactions, popularity around the user's own days
    of activity, the item's and the user's mean rating; and, where the dataset has them (ml-100k
    has all), the user's genre profile against the item's genres (``class``), the item's release
    year and its distance to the user's mean year (``release_year``), the user's age and gender.

The reranker is a small MLP :math:`f(x_{uj})` trained with a listwise softmax loss over each
user's N candidates (ListNet-style; P_u is the user's relevant candidates):

.. math::
    L = -\\frac{1}{|\\mathcal{U}|} \\sum_u \\frac{1}{|P_u|} \\sum_{j \\in P_u}
        \\log \\frac{\\exp f(x_{uj})}{\\sum_{k \\in C_u} \\exp f(x_{uk})}.

Two ways to get labels:

* **train holdout** (a fair protocol): hold out 1/9 of each user's training interactions,
  compute every signal from the other 8/9, train the reranker to find the held-out ones; then
  recompute the signals from the whole training split and rerank for valid and test. Epochs are
  chosen on valid.
* **valid labels** (a diagnostic, not a protocol kgrec could use): train on the valid
  interactions of half the users, with the signals from the training split, choose epochs on the
  other half's valid NDCG@10, report test only. The reranker then sees exactly the feature
  distribution it is applied to, so its test figure bounds what these signals add to the teacher.

No signal reads valid or test; test is read once per row.

    python scripts/bench_rerank.py [--candidates 100] [--epochs 30] [--seed 0]
"""

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, SET_HELP, config_file

from kgrec.baselines import EASE, UserEASE
from kgrec.data.dataset import Interactions
from kgrec.eval import evaluate_ranking
from kgrec.train import load_config, load_data
from kgrec.train.teacher import EaseTeacher, blend, ranked_mean_std

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--candidates", type=int, default=100, help="teacher's top-N reranked per user")
parser.add_argument("--epochs", type=int, default=30, help="most reranker epochs (the best on valid is kept)")
parser.add_argument("--hidden", type=int, default=32, help="hidden units of the reranker MLP")
parser.add_argument("--seed", type=int, default=0, help="seed of the holdout, the user halves and the MLP")
args = parser.parse_args()

config = load_config(args.config, ["train.progress=false", *args.overrides])
dataset = load_data(config)
missing = [column for column in ("timestamp", "rating") if getattr(dataset.train, column) is None]
if missing:  # signals every candidate is given
    raise SystemExit(f"{dataset.name} has no {' or '.join(missing)} column: this bench needs both (the reranker's time-local popularity and mean-rating signals)")
n_users, n_items = dataset.n_users, dataset.n_items
torch.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
teacher = EaseTeacher.from_config(dataset, config.train)  # L2 weights chosen on valid, as kgrec's
print(f"{dataset.name}: {dataset.split}; teacher: {teacher.description()}; "
      f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip

# side information, where the dataset has it (ml-100k has all four; other data may have none)
items, users = dataset.item_features, dataset.user_features
genre = year = age = female = None
if "class" in items:
    genres = sorted({g for gs in items["class"] for g in gs or []})
    genre = torch.zeros(n_items, len(genres))
    for i, gs in enumerate(items["class"]):
        genre[i, [genres.index(g) for g in gs or []]] = 1
if "release_year" in items:
    year = torch.tensor([float(y) if str(y).isdigit() else np.nan for y in items["release_year"]])
    year = year.nan_to_num(float(year.nanmedian()))
if "age" in users:
    age = torch.tensor(users["age"].astype(np.float32))
if "gender" in users:
    female = torch.tensor(users["gender"] == "F", dtype=torch.float32)
present = [name for name, x in (("genres", genre), ("release year", year), ("age", age), ("gender", female)) if x is not None]
print(f"side signals: {', '.join(present) or 'none'}")


def zscore(scores: torch.Tensor) -> torch.Tensor:
    mean, std = ranked_mean_std(scores)
    return (scores - mean) / std.clamp(min=1e-12)


def every_user(model: EASE | UserEASE) -> torch.Tensor:
    return torch.cat([model.score(torch.arange(b, min(b + 512, n_users))) for b in range(0, n_users, 512)]).float()


def signals(train: Interactions) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U, I, F)`` signals of every pair and ``(U, I)`` teacher scores (``-inf`` on training
    items), all computed from ``train`` alone."""
    seen = matrix(train)
    x = seen.float()
    session = every_user(EASE(teacher.reg, session_hours=teacher.session_hours).fit(train, n_users, n_items))
    plain = every_user(EASE(teacher.reg).fit(train, n_users, n_items))
    user_reg = UserEASE().reg if teacher.user_model is None else teacher.user_model.reg  # a signal even if not taught
    user = every_user(UserEASE(user_reg).fit(train, n_users, n_items))
    session, plain, user = (s.masked_fill(seen, float("-inf")) for s in (session, plain, user))
    taught = session if teacher.user_model is None else blend(session, user, teacher.user_weight)
    rank = taught.argsort(1, descending=True).argsort(1).float()
    popularity, activity = x.sum(0), x.sum(1).clamp(min=1)
    # popularity around the user's days of activity: p(j | day) smoothed by exp(-|d - d'| / 10 days)
    day = torch.as_tensor((train.timestamp - dataset.train.timestamp.min()) // 86400, dtype=torch.long)
    per_day = torch.zeros(n_items, int(day.max()) + 1).index_put_((torch.as_tensor(train.item), day),
                                                                   torch.ones(len(day)), accumulate=True)  # fmt: skip
    days = torch.arange(per_day.shape[1], dtype=torch.float32)
    smooth = per_day @ torch.exp(-(days[:, None] - days[None]).abs() / 10)
    active = torch.zeros(n_users, per_day.shape[1]).index_put_((torch.as_tensor(train.user), day),
                                                               torch.ones(len(day)), accumulate=True)  # fmt: skip
    local = (active / active.sum(1, keepdim=True)) @ (smooth / smooth.sum(0, keepdim=True).clamp(min=1e-9)).T
    rating = torch.as_tensor(train.rating, dtype=torch.float32)
    item_mean = (torch.zeros(n_items).index_add_(0, torch.as_tensor(train.item), rating) + 3.5 * 5) / (popularity + 5)
    user_mean = torch.zeros(n_users).index_add_(0, torch.as_tensor(train.user), rating) / activity
    columns = [
        zscore(session), zscore(plain), zscore(user), zscore(taught), torch.log1p(rank),
        torch.log1p(popularity)[None].expand(n_users, -1), torch.log1p(activity)[:, None].expand(-1, n_items),
        torch.log(local + 1e-6), item_mean[None].expand(n_users, -1), user_mean[:, None].expand(-1, n_items),
    ]  # fmt: skip
    if genre is not None:  # the user's genre profile against the item's genres
        columns.append((x @ genre / activity[:, None]) @ genre.T / genre.sum(1).clamp(min=1))
    if year is not None:  # the item's year and its distance to the user's mean year
        columns += [(year[None] - (x @ year / activity)[:, None]).abs(), year[None].expand(n_users, -1)]
    columns += [feature[:, None].expand(-1, n_items) for feature in (age, female) if feature is not None]
    return torch.stack(columns, -1).nan_to_num(0.0, posinf=0.0, neginf=0.0), taught


def matrix(part: Interactions) -> torch.Tensor:
    """``(U, I)`` bool: the pairs of ``part``."""
    m = torch.zeros(n_users, n_items, dtype=torch.bool)
    m[part.user, part.item] = True
    return m


def top_candidates(taught: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Each user's top-N by the teacher (already ``-inf`` on the training items it was fitted on),
    leaving out ``exclude`` too."""
    if exclude is not None:
        taught = taught.masked_fill(exclude, float("-inf"))
    return taught.topk(args.candidates, dim=1).indices  # (U, N)


class Reranker(torch.nn.Module):
    """Standardised signals -> ``hidden`` ReLU units -> one score."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        flat = x.reshape(-1, x.shape[-1])
        self.register_buffer("mean", flat.mean(0))
        self.register_buffer("std", flat.std(0).clamp(min=1e-6))
        self.mlp = torch.nn.Sequential(torch.nn.Linear(x.shape[-1], args.hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(args.hidden, 1))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp((x - self.mean) / self.std).squeeze(-1)


def reranked(model: Reranker, x: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """``(U, I)`` scores: the reranker's on each user's candidates, ``-inf`` elsewhere."""
    with torch.no_grad():
        scores = model(x[torch.arange(n_users)[:, None], candidates])
    return torch.full((n_users, n_items), float("-inf")).scatter_(1, candidates, scores)


def train_reranker(x: torch.Tensor, labels: torch.Tensor, choose) -> tuple[Reranker, int, float]:
    """Listwise softmax over each user's candidates (``x`` (U, N, F), ``labels`` (U, N)); returns
    the model of the epoch ``choose(model)`` scores highest, that epoch and its score."""
    keep = labels.sum(1) > 0
    x, labels = x[keep], labels[keep]
    model = Reranker(x)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.003, weight_decay=1e-4)
    best = (-1.0, 0, model.state_dict())
    for epoch in range(1, args.epochs + 1):
        for batch in torch.randperm(len(x)).split(64):
            log_p = torch.log_softmax(model(x[batch]), 1)
            loss = -((log_p * labels[batch]).sum(1) / labels[batch].sum(1)).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        score = choose(model)
        if score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    return model, best[1], best[0]


def metrics(scores: torch.Tensor, part: str, users: np.ndarray | None = None) -> dict[str, float]:
    """Full-ranking metrics of ``(U, I)`` scores on ``part`` (only ``users``' pairs, if given)."""
    target = getattr(dataset, part)
    if users is not None:
        target = target.select(np.isin(target.user, users))
    exclude = [dataset.train] if part == "valid" else [dataset.train, dataset.valid]
    return evaluate_ranking(lambda u: scores[u], target, exclude, n_users, n_items)


# the signals from the whole training split, the candidates for valid and for test
full, taught = signals(dataset.train)
valid_pairs = matrix(dataset.valid)
valid_candidates, test_candidates = top_candidates(taught), top_candidates(taught, valid_pairs)
in_valid = valid_pairs.gather(1, valid_candidates)
print(f"{args.candidates} candidates per user hold {in_valid.sum() / len(dataset.valid):.3f} of the valid pairs")
rows = {"teacher (top-N order)": (metrics(taught, "valid"), metrics(taught, "test"), "-")}

# 1. train holdout: 1/9 of each user's training interactions are the labels
held = np.zeros(len(dataset.train), dtype=bool)
for u in range(n_users):
    own = np.flatnonzero(dataset.train.user == u)
    held[rng.choice(own, max(1, round(len(own) / 9)), replace=False)] = True
rest, holdout = dataset.train.select(~held), dataset.train.select(held)
partial, partial_taught = signals(rest)
holdout_candidates = top_candidates(partial_taught)
labels = matrix(holdout).gather(1, holdout_candidates).float()
model, epoch, _ = train_reranker(partial[torch.arange(n_users)[:, None], holdout_candidates], labels,
                                 lambda m: metrics(reranked(m, full, valid_candidates), "valid")["ndcg@10"])  # fmt: skip
rows["reranker, train holdout"] = (metrics(reranked(model, full, valid_candidates), "valid"),
                                   metrics(reranked(model, full, test_candidates), "test"), str(epoch))  # fmt: skip

# 2. valid labels of half the users (diagnostic); epochs chosen on the other half's valid
order = rng.permutation(n_users)
half, other = torch.as_tensor(order[: n_users // 2]), order[n_users // 2 :]
x = full[half[:, None], valid_candidates[half]]
model, epoch, chosen = train_reranker(x, in_valid[half].float(),
                                      lambda m: metrics(reranked(m, full, valid_candidates), "valid", other)["ndcg@10"])  # fmt: skip
rows["reranker, valid labels (diagnostic)"] = (None, metrics(reranked(model, full, test_candidates), "test"), str(epoch))

print(f"\n{'reranker of the teacher top-' + str(args.candidates):40} {'epochs':>6} {'valid ndcg@10':>13} "
      f"{'test ndcg@10':>12} {'recall@20':>9} {'recall@10':>9} {'mrr@10':>7}")  # fmt: skip
for name, (valid, test, epochs) in rows.items():
    v = "-" if valid is None else f"{valid['ndcg@10']:.4f}"
    print(f"{name:40} {epochs:>6} {v:>13} {test['ndcg@10']:12.4f} {test['recall@20']:9.4f} "
          f"{test['recall@10']:9.4f} {test['mrr@10']:7.4f}")  # fmt: skip
base = rows["teacher (top-N order)"][1]
for name in list(rows)[1:]:
    print(f"{name} / teacher: test ndcg@10 x{rows[name][1]['ndcg@10'] / base['ndcg@10']:.3f}")
print("valid labels: trained on half the users' valid pairs, epochs chosen on the other half's; "
      "valid is then no longer held out, so only test is shown")
