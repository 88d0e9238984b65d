r"""How much a new user's history is shrunk toward the mean training user, chosen on the valid split.

A user unknown at training time gets the model's ``history`` user pathway over the items they
liked (:meth:`~kgrec.models.MultiTaskRecommender.new_user_vectors`), with the history part

.. math::
    \mathbf{h}_u = \frac{\sum_{i \in L_u} \mathbf{h}_i + k\, \bar{\mathbf{h}}}{|L_u| + k}

One liked item says little beyond the average user; a long history outweighs the prior. The
weight :math:`k` (how many liked items the mean training user counts for) is the one of
:data:`PRIOR_WEIGHTS` under which **simulated new users** rank their valid items best
(NDCG@10): up to ``max_users`` training users with valid items, each telling only a random
:math:`m_u` of their training items, :math:`m_u = \lfloor e^{x} \rfloor` with
:math:`x \sim U(0, \ln (n_u + 1))`, so :math:`P(m_u = m) \propto \ln \frac{m + 1}{m}`
(log-uniform between one item and the whole history, as new users tell a few items or many).
Their valid items are the targets, and all their training items are left out of the ranking.
Only the training and valid splits are read, as in model selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from kgrec.data.dataset import Dataset, Interactions
from kgrec.eval import evaluate_ranking

if TYPE_CHECKING:
    from kgrec.models import Encoded, HistoryPrior, MultiTaskRecommender

PRIOR_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0)
"""The prior weights :math:`k` tried (liked items the mean training user counts for)."""
MAX_USERS = 2000
"""Simulated new users at most (a random sample of the training users with valid items)."""
CUTOFF = 10
"""The NDCG cut-off the weights are compared at (the catalog's size when it holds fewer items)."""


@dataclass(frozen=True)
class SimulatedNewUsers:
    """Training users posing as new users: rows ``0..n-1`` of ``given`` (the training items they
    tell), ``target`` (their valid items) and ``exclude`` (all their training items); ``users``
    are their dataset indices."""

    users: np.ndarray
    given: Interactions
    target: Interactions
    exclude: Interactions


@dataclass(frozen=True)
class PriorChoice:
    """The chosen ``prior`` and the valid NDCG@10 of the simulated new users under each weight
    (NDCG at the catalog's size when it holds fewer than 10 items)."""

    prior: HistoryPrior
    ndcg: dict[float, float]
    users: int


def simulate_new_users(dataset: Dataset, max_users: int = MAX_USERS, seed: int = 0) -> SimulatedNewUsers:
    """Up to ``max_users`` training users with valid items, each telling a log-uniform random
    number of their training items (module docstring); reads only the training and valid splits."""
    train, valid = dataset.train, dataset.valid
    users = np.intersect1d(np.unique(train.user), np.unique(valid.user))
    rng = np.random.default_rng(seed)
    if len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    row = np.full(dataset.n_users, -1, np.int64)
    row[users] = np.arange(len(users))
    order = np.argsort(train.user, kind="stable")
    bounds = np.searchsorted(train.user[order], np.stack([users, users + 1]))  # (2, n) start, end
    given = []
    for start, end in bounds.T:
        items = rng.permutation(train.item[order[start:end]])
        told = int(np.exp(rng.uniform(0.0, np.log(len(items) + 1))))  # floor: 1..n_u
        given.append(items[: min(max(told, 1), len(items))])

    def of_users(part: Interactions) -> Interactions:
        kept = row[part.user] >= 0
        return Interactions(row[part.user[kept]], part.item[kept])

    told_rows = np.repeat(np.arange(len(users)), [len(g) for g in given])
    return SimulatedNewUsers(users, Interactions(told_rows, np.concatenate(given)), of_users(valid), of_users(train))


@torch.no_grad()
def choose_history_prior(
    model: MultiTaskRecommender,
    dataset: Dataset,
    encoded: Encoded | None = None,
    weights: tuple[float, ...] = PRIOR_WEIGHTS,
    max_users: int = MAX_USERS,
    seed: int = 0,
) -> PriorChoice:
    """The prior weight under which :func:`simulate_new_users` rank their valid items best
    (NDCG@10, or at the catalog's size below 10 items; the smaller weight on a tie), with the mean
    training user's history part; weight 0 (the plain mean) when no training user has valid items."""
    from kgrec.models import HistoryPrior

    encoded = model.encode() if encoded is None else encoded
    mean = model.mean_history(encoded)
    sim = simulate_new_users(dataset, max_users, seed)
    n = len(sim.users)
    if n == 0:  # no training user has valid items: nothing to choose on, the plain mean
        return PriorChoice(HistoryPrior(mean, 0.0), {}, 0)
    items = encoded.items.float()
    rows, told = (torch.as_tensor(a, device=items.device) for a in (sim.given.user, sim.given.item))
    sums = items.new_zeros(n, items.size(1)).index_add_(0, rows, items[told])
    counts = torch.bincount(rows, minlength=n)
    item_vectors = model.item_vectors(encoded).float()
    cutoff = min(CUTOFF, dataset.n_items)  # a cut-off beyond the catalog raised ValueError (8 items)

    def ndcg_at_cutoff(users: torch.Tensor) -> float:  # scored in batches of users: memory O(batch x items)
        score = lambda batch: users[batch.to(users.device)] @ item_vectors.T  # noqa: E731
        return evaluate_ranking(score, sim.target, sim.exclude, n, dataset.n_items, (cutoff,))[f"ndcg@{cutoff}"]

    ndcg = {w: ndcg_at_cutoff(model.new_user_vectors(sums, counts, HistoryPrior(mean, w)).float()) for w in weights}
    best = max(weights, key=lambda w: (ndcg[w], -w))
    return PriorChoice(HistoryPrior(mean, best), ndcg, n)
