"""How far closed-form and linear recommenders go on ml-100k's default split (the top-K ceiling).

kgrec's quality goal asks for more than EASE. This script measures, on the same split and with
the same full-ranking evaluation as ``scripts/bench_quality.py``, the closed-form and linear
models that usually sit at the top of MovieLens tables, and simple ways to add what they lack:

* EASE (Steck 2019) and EDLAE (Steck 2020: EASE with dropout-shaped, per-item L2);
* user-based EASE (the same closed form over users) and its blend with item EASE;
* GF-CF (Shen et al. 2021: normalised item-item filter + ideal low-pass filter);
* the neighbourhood models of Dacrema et al.'s reproducibility study (RecSys 2019): ItemKNN
  (cosine with shrinkage, k neighbours per item) and RP3beta (Paudel et al. 2017: two-step
  random walk item -> user -> item, raised to alpha, divided by popularity^beta);
* Mult-VAE (Liang et al. 2018), the variational autoencoder with a multinomial likelihood, the
  non-linear model that sits beside EASE in those tables;
* infinite-width autoencoder (inf-AE, Sachdeva et al. 2022): a one-hidden-layer ReLU
  autoencoder of infinite width trained to convergence is kernel ridge regression with its
  neural tangent kernel over the users' rows, S = K (K + lambda I)^-1 X, in closed form;
* CEASE-style side information (Ning & Karypis 2012): the item-feature matrix (genres and the
  KG entities linked to each item) stacked under the interactions before the EASE solve;
* EASE + time-local popularity (items popular around the user's own dates of activity);
* EASE scoring a recency-weighted history, s_u = W_u B with W_ui = f + (1 - f) exp(-age / tau),
  the age of item i at the user's last training interaction (what ``EASE(recency_hours=tau,
  recency_floor=f)`` and ``train.teacher_recency_hours`` compute), tau from 72 seconds to a week,
  or off (plain EASE, which a random split prefers);
* EASE on session-weighted co-occurrence: pairs a user rated close in time count more,
  G = (1 - m) X'X + m G_tau, where G_tau sums exp(-|t_ui - t_uj| / tau) over users u and
  the pairs (i, j) they rated (rescaled to the trace of X'X), tau from 72 seconds to a day;
  chosen among m = 1 alone (what ``EASE(session_hours=tau)`` and kgrec's teacher compute) and
  among m = 0.5 or 1;
* session-weighted EASE blended with user EASE, each standardised per user
  (:func:`kgrec.train.teacher.blend`): what ``train.teacher_session_hours`` and
  ``train.teacher_user_weight`` make kgrec's teacher;
* rating-aware EASE: the ratings as extra input rows (``liked`` = r >= 4, or the deviation from
  the user's mean rating), predicting the interactions; item i's own rows are held out of its
  column (EASE's zero diagonal, one Lagrange multiplier per row block);
* EASE + a trained kgrec run (``--run``: the run's retrieval scores, z-scored per user), and the
  run with a popularity prior: z-scored scores + b * log(1 + training count of the item).

Every weight is chosen on VALID; test is read once per row. Nothing here is kgrec's model: it
is the yardstick the model is measured against.

    python scripts/bench_linear.py [--run runs/ml-100k] [--seed 0] [--set data.split=global_temporal ...]
"""

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, SET_HELP, config_file
from safetensors.torch import load_file

from kgrec.baselines import MostPopular
from kgrec.baselines.ease import session_gram
from kgrec.eval import evaluate_split
from kgrec.eval.matrix import age_matrix, recency_weights
from kgrec.graph import build_graph
from kgrec.train import load_config, load_data
from kgrec.train.run import find_recipe
from kgrec.train.teacher import blend

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--run", help="a trained run on the same split, blended with EASE")
parser.add_argument("--seed", type=int, default=0, help="Mult-VAE's training seed (other rows have none)")
args = parser.parse_args()

config = load_config(args.config, args.overrides)
dataset = load_data(config)
missing = [column for column in ("timestamp", "rating") if getattr(dataset.train, column) is None]
if missing:  # the time-local, recency, session and rating-aware rows
    raise SystemExit(f"{dataset.name} has no {' or '.join(missing)} column: this bench needs both (its time- and rating-aware rows)")
train = dataset.train
n_users, n_items = dataset.n_users, dataset.n_items
X = torch.zeros(n_users, n_items, dtype=torch.float64)
X[train.user, train.item] = 1.0
print(f"{dataset.name}: split {dataset.split}; train {len(train)}; "
      f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads\n")  # fmt: skip


def ease_weights(gram: torch.Tensor, l2: torch.Tensor | float) -> torch.Tensor:
    """B = I - P diagMat(1 / diag P), P = (G + diag(l2))^-1: EASE's closed form."""
    p = torch.linalg.inv(gram + torch.diag(torch.as_tensor(l2, dtype=gram.dtype).expand(len(gram))))
    b = -p / p.diagonal()
    b.diagonal().zero_()
    return b


def block_ease_scores(features: torch.Tensor, l2: float, blocks: int) -> torch.Tensor:
    """Scores X_in B, B = argmin ||X - F B||^2 + l2 ||B||^2 with B[k I + i, i] = 0 for every block k.

    F = [X, extra...] holds ``blocks`` row blocks of I columns. With P = (F^T F + l2)^-1 the
    constrained column is b_i = P F^T x_i - P[:, S_i] mu_i, mu_i solving P[S_i, S_i] mu_i =
    (P F^T x_i)[S_i], S_i = {k I + i}: for one block this is EASE's closed form.
    """
    p = torch.linalg.inv(features.T @ features + l2 * torch.eye(features.size(1), dtype=features.dtype))
    b = p @ (features.T @ X)
    held = torch.arange(n_items)[:, None] + n_items * torch.arange(blocks)[None, :]  # (I, blocks)
    mu = torch.linalg.solve(p[held[:, :, None], held[:, None, :]], b[held, torch.arange(n_items)[:, None]])
    b -= (p[:, held] * mu[None]).sum(-1)
    return features @ b


def zscore(s: torch.Tensor) -> torch.Tensor:
    return (s - s.mean(1, keepdim=True)) / s.std(1, keepdim=True).clamp(min=1e-12)


def evaluate(scores: torch.Tensor, part: str) -> dict[str, float]:
    s = scores.float()
    return evaluate_split(lambda users: s[users], dataset, part)  # type: ignore[arg-type]


rows: list[tuple[str, str, float, dict[str, float]]] = []


def best_on_valid(name: str, candidates: dict[str, torch.Tensor]) -> torch.Tensor:
    """Keep the candidate with the best valid NDCG@10; record it and its test metrics."""
    scored = {label: evaluate(s, "valid")["ndcg@10"] for label, s in candidates.items()}
    label = max(scored, key=scored.__getitem__)
    rows.append((name, label, scored[label], evaluate(candidates[label], "test")))
    return candidates[label]


gram = X.T @ X
ease = best_on_valid("EASE", {f"l2={l2}": X @ ease_weights(gram, l2) for l2 in (100, 250, 500, 1000)})
best_on_valid("EDLAE", {
    f"p={p} l2={l2}": X @ ease_weights(gram, p / (1 - p) * gram.diagonal() + l2)
    for p in (0.25, 0.5) for l2 in (50, 200)
})  # fmt: skip
user_gram = X @ X.T
user_ease = best_on_valid("user EASE", {f"l2={l2}": ease_weights(user_gram, l2).T @ X for l2 in (100, 200, 400)})
best_on_valid("item + user EASE", {f"a={a}": (1 - a) * zscore(ease) + a * zscore(user_ease) for a in (0.2, 0.35, 0.5)})

norm = X / X.sum(1, keepdim=True).clamp(min=1).sqrt() / X.sum(0, keepdim=True).clamp(min=1).sqrt()
linear = X @ (norm.T @ norm)
_, _, vt = torch.linalg.svd(norm, full_matrices=False)
d = X.sum(0).clamp(min=1)
gf_cf = {}
for k in (64, 128):
    v = vt[:k].T
    ideal = X @ (d.pow(-0.5)[:, None] * v) @ (v.T * d.pow(0.5)[None, :])
    gf_cf.update({f"k={k} a={a}": linear + a * ideal for a in (0.3, 1.0)})
best_on_valid("GF-CF", gf_cf)


def keep_top_k(weights: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep each target item's (column's) k largest weights, zero the rest."""
    if k is None or k >= len(weights):
        return weights
    values, rows = weights.topk(k, dim=0)
    return torch.zeros_like(weights).scatter_(0, rows, values)


norms = gram.diagonal().sqrt()
best_on_valid("ItemKNN (cosine)", {
    f"shrink={h} k={k}": X @ keep_top_k((gram / (norms[:, None] * norms[None] + h + 1e-12)).fill_diagonal_(0), k)
    for h in (0, 10, 100) for k in (50, 200, None)
})  # fmt: skip
p_ui, p_iu = X / X.sum(1, keepdim=True).clamp(min=1), X.T / d[:, None]  # d: item degrees (GF-CF above)
best_on_valid("RP3beta", {
    f"a={a} b={b} k={k}": X @ keep_top_k((p_iu**a @ p_ui**a / d.pow(b)).fill_diagonal_(0), k)
    for a in (0.5, 0.8, 1.0) for b in (0.2, 0.4, 0.6) for k in (100, 300, None)
})  # fmt: skip


class MultVAE(torch.nn.Module):
    """x -> dropout(x / ||x||) -> tanh MLP -> (mu, log sigma^2) -> z -> tanh MLP -> logits over items.

    Loss: -sum_i x_i log softmax(logits)_i + beta KL(N(mu, sigma^2) || N(0, I)), beta annealed
    linearly from 0 to its cap; items are ranked by the logits of z = mu.
    """

    def __init__(self, n_items: int, hidden: int = 600, latent: int = 200, dropout: float = 0.5) -> None:
        super().__init__()
        linear, tanh = torch.nn.Linear, torch.nn.Tanh()
        self.dropout = torch.nn.Dropout(dropout)
        self.encoder = torch.nn.Sequential(linear(n_items, hidden), tanh, linear(hidden, 2 * latent))
        self.decoder = torch.nn.Sequential(linear(latent, hidden), tanh, linear(hidden, n_items))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(self.dropout(torch.nn.functional.normalize(x, dim=1))).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * log_var).exp() if self.training else mu
        kl = 0.5 * (log_var.exp() + mu**2 - 1 - log_var).sum(1).mean()
        return self.decoder(z), kl


def mult_vae_scores(beta_cap: float, anneal_steps: int = 2000, patience: int = 20) -> torch.Tensor:
    """Train on the training rows (batches of 100 users, Adam 1e-3); keep the epoch best on valid."""
    torch.manual_seed(args.seed)
    x = X.float()
    model = MultVAE(n_items)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step, best, best_scores, since_best = 0, -1.0, x, 0
    while since_best < patience:
        model.train()
        for users in torch.randperm(n_users).split(100):
            logits, kl = model(x[users])
            beta = beta_cap * min(1.0, step / anneal_steps)
            loss = -(torch.log_softmax(logits, 1) * x[users]).sum(1).mean() + beta * kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        model.eval()
        with torch.no_grad():
            scores = model(x)[0]
        valid = evaluate(scores, "valid")["ndcg@10"]
        if valid > best:
            best, best_scores, since_best = valid, scores, 0
        else:
            since_best += 1
    return best_scores


best_on_valid(f"Mult-VAE (seed {args.seed})", {f"beta={b}": mult_vae_scores(b) for b in (0.2, 1.0)})


def relu_ntk(rows: torch.Tensor) -> torch.Tensor:
    """The NTK of a one-hidden-layer ReLU network between ``rows`` (Jacot et al. 2018):
    Theta = Sigma theta-term + Sigma_1, with Sigma = x'y, theta the angle between x and y,
    Sigma_1 = |x| |y| (sin theta + (pi - theta) cos theta) / 2 pi and the derivative's
    expectation (pi - theta) / 2 pi (Cho and Saul's arc-cosine kernels); scaled to a unit
    mean diagonal, so that lambda is relative to it."""
    sigma = rows @ rows.T
    norm = sigma.diagonal().clamp(min=1e-12).sqrt()
    cos = (sigma / norm[:, None] / norm[None]).clamp(-1, 1)
    theta = torch.arccos(cos)
    kernel = sigma * (np.pi - theta) / (2 * np.pi) + norm[:, None] * norm[None] * (theta.sin() + (np.pi - theta) * cos) / (2 * np.pi)
    return kernel / kernel.diagonal().mean()


ntk = relu_ntk(X)
best_on_valid("inf-AE (ReLU NTK)", {
    f"lambda={lam}": ntk @ torch.linalg.solve(ntk + lam * torch.eye(n_users, dtype=ntk.dtype), X) for lam in (1, 2, 3, 5, 10)
})  # fmt: skip

graph = build_graph(dataset, find_recipe(config, dataset), progress=False)
item_edges = graph.head < n_items
features = torch.zeros(n_items, graph.n_nodes, dtype=torch.float64)
features[graph.head[item_edges], graph.tail[item_edges]] = 1.0
features = features[:, features.sum(0) >= 2]  # genres, decades and KG entities shared by 2+ items
best_on_valid("CEASE (genres + KG entities as rows)", {
    f"w={w} l2={l2}": X @ ease_weights(gram + w * w * features @ features.T, l2) for w in (0.5, 1.0, 2.0) for l2 in (250, 500)
})  # fmt: skip

day = torch.as_tensor((train.timestamp - train.timestamp.min()) // 86400, dtype=torch.long)
hist = torch.zeros(n_items, int(day.max()) + 1, dtype=torch.float64)
hist.index_put_((torch.as_tensor(train.item), day), torch.ones(len(day), dtype=torch.float64), accumulate=True)
user_day = torch.zeros(n_users, dtype=torch.long)  # day 0 for users with no training day (not evaluated)
for u in np.unique(train.user):
    user_day[u] = day[torch.as_tensor(train.user == u)].median()
time_pop = {}
for window in (7, 30):
    smooth = torch.nn.functional.conv1d(hist[:, None], torch.ones(1, 1, 2 * window + 1, dtype=torch.float64),
                                        padding=window)[:, 0]  # fmt: skip
    share = (smooth / smooth.sum(0, keepdim=True).clamp(min=1)).T[user_day]  # (U, I)
    time_pop.update({f"window={window}d a={a}": ease + a * torch.log(share + 1e-6) for a in (0.0, 0.01, 0.03)})
best_on_valid("EASE + time-local popularity", time_pop)

ease_by_l2 = {l2: ease_weights(gram, l2) for l2 in (100, 250, 500)}
ages = age_matrix(train, n_users, n_items)  # what recency_matrix weighs, computed once for every decay
recency_rows = {
    (tau, floor): recency_weights(ages, tau, floor).to_dense().double()
    for tau in (0.02, 0.05, 0.1, 0.3, 1, 24, 168) for floor in (0.0, 0.05, 0.2)
}  # fmt: skip
best_on_valid("EASE, recency-weighted history", {
    **{f"off l2={l2}": X @ weights for l2, weights in ease_by_l2.items()},  # every item weighs 1: EASE
    **{f"tau={tau}h f={floor} l2={l2}": rows_w @ weights
       for (tau, floor), rows_w in recency_rows.items() for l2, weights in ease_by_l2.items()},
})  # fmt: skip

session_grams = {}
for tau_hours in (0.02, 0.1, 1, 24):  # 72 seconds to a day
    g = session_gram(train, n_items, tau_hours)  # EASE(session_hours=tau)'s Gram matrix
    session_grams[tau_hours] = g * (gram.trace() / g.trace())
session_scores = {  # (m, label) -> scores
    (m, f"tau={tau}h m={m} l2={l2}"): X @ ease_weights((1 - m) * gram + m * g, l2)
    for tau, g in session_grams.items() for m in (0.5, 1.0) for l2 in (250, 500)
}  # fmt: skip
seen = X.bool()  # the teacher's blend standardises over the items it ranks: not the training items
for kind, m_grid in (("m=1, the teacher's", (1.0,)), ("any m", (0.5, 1.0))):
    session_ease = best_on_valid(f"session EASE ({kind})", {
        label: scores for (m, label), scores in session_scores.items() if m in m_grid
    })  # fmt: skip
    best_on_valid("  + user EASE (blend)", {
        f"a={a}": blend(session_ease.masked_fill(seen, float("-inf")), user_ease, a) for a in (0.5, 1.0, 2.0)
    })  # fmt: skip

ratings = torch.zeros(n_users, n_items, dtype=torch.float64)
ratings[train.user, train.item] = torch.as_tensor(train.rating, dtype=torch.float64)
user_mean = ratings.sum(1, keepdim=True) / X.sum(1, keepdim=True).clamp(min=1)
rating_rows = {"liked": (ratings >= 4).double(), "deviation": (ratings - user_mean) * X}
best_on_valid("rating-aware EASE (ratings as rows)", {
    f"{name} w={w} l2={l2}": block_ease_scores(torch.cat([X, w * rows], 1), l2, blocks=2)
    for name, rows in rating_rows.items() for w in (0.5, 1.0) for l2 in (250, 500)
})  # fmt: skip

if args.run:
    run_data = load_config(f"{args.run}/config.yaml", []).data
    same_split = ("split", "ratios", "cold_item_share", "seed")
    trained_on = json.loads(Path(args.run, "manifest.json").read_text(encoding="utf-8"))["dataset"]
    if any(getattr(run_data, f) != getattr(config.data, f) for f in same_split) or trained_on != dataset.name:
        # another split's (or dataset's) run has trained on this split's valid and test pairs
        raise SystemExit(f"{args.run} was trained on other data or another split than {args.config}'s: {run_data}")
    vectors = load_file(f"{args.run}/vectors.safetensors")
    run_scores = vectors["user"].double() @ vectors["item"].double().T
    best_on_valid(f"kgrec run ({args.run})", {"alone": run_scores})
    popularity = torch.log1p(MostPopular().fit(train, n_users, n_items).counts.double())  # type: ignore[union-attr]
    best_on_valid("kgrec run + popularity prior", {
        f"b={b}": zscore(run_scores) + b * popularity for b in (0.025, 0.05, 0.1, 0.2)
    })  # fmt: skip
    best_on_valid("EASE + kgrec run", {f"a={a}": (1 - a) * zscore(ease) + a * zscore(run_scores) for a in (0.2, 0.35, 0.5)})

keys = ("ndcg@10", "recall@20", "recall@10", "ndcg@20")
print(f"{'model':<38}{'chosen on valid':<24}{'valid ndcg@10':>14}" + "".join(f"{k:>11}" for k in keys))
for name, label, valid, metrics in rows:
    print(f"{name:<38}{label:<24}{valid:>14.4f}" + "".join(f"{metrics[k]:>11.4f}" for k in keys))
