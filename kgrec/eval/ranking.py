"""Full-ranking top-K evaluation over the whole item catalogue, for any scoring function.

For every evaluated user ``u`` the model scores all items; the items ``u`` interacted with in
the exclusion parts (train, plus valid when testing) are set to ``-inf``; the top ``K`` of the
rest, :math:`R_u = (r_1, \\dots, r_K)`, are compared with the user's relevant items
:math:`T_u` (their items in the evaluated part). Relevance is binary. With
:math:`h_k = [r_k \\in T_u]`:

.. math::
    \\mathrm{Recall@K}    &= \\frac{\\sum_{k \\le K} h_k}{|T_u|}
        \\quad\\text{(RecBole's definition: the denominator is } |T_u| \\text{, not } \\min(|T_u|, K))\\\\
    \\mathrm{Precision@K} &= \\frac{\\sum_{k \\le K} h_k}{K} \\\\
    \\mathrm{Hit@K}       &= [\\sum_{k \\le K} h_k > 0] \\\\
    \\mathrm{MRR@K}       &= 1 / \\min\\{k \\le K : h_k = 1\\}  \\quad (0 \\text{ when there is none}) \\\\
    \\mathrm{NDCG@K}      &= \\frac{\\sum_{k \\le K} h_k / \\log_2(k + 1)}
                              {\\sum_{k \\le \\min(|T_u|, K)} 1 / \\log_2(k + 1)}

Beyond accuracy, given each item's number of training interactions :math:`\\phi(i)` (as
:func:`evaluate_split` does), the lists themselves are described (as RecBole's ItemCoverage,
AveragePopularity, GiniIndex and TailPercentage do, with the tail defined below). With
:math:`c_i` the number of evaluated users whose top K hold item :math:`i`, sorted ascending
over all :math:`n` items as :math:`c_{(1)} \\le \\dots \\le c_{(n)}`:

.. math::
    \\mathrm{Coverage@K}   &= |\\{i : c_i > 0\\}| / n \\\\
    \\mathrm{Popularity@K} &= \\frac{1}{|U|} \\sum_u \\frac{1}{K} \\sum_{k \\le K} \\phi(r_k) \\\\
    \\mathrm{Gini@K}       &= \\frac{\\sum_{j=1}^{n} (2j - n - 1)\\, c_{(j)}}{n \\sum_j c_{(j)}} \\\\
    \\mathrm{Tail@K}       &= \\frac{1}{|U|} \\sum_u \\frac{1}{K} \\sum_{k \\le K} [r_k \\in \\mathcal{T}]

where the long tail :math:`\\mathcal{T}` is every item outside the 20% with the most training
interactions (:func:`kgrec.data.info.short_head`). Coverage and tail share are higher for lists
that reach more of the catalogue; popularity and Gini (0: every item recommended equally often,
near 1: the same few items for everyone) are lower. A user whose list is cut short (fewer than K
items left to rank) counts over its real items, and :math:`U` in popularity and tail share is the
users whose list holds at least one (an empty list has no items to describe; it still counts as
a miss in the accuracy metrics). With ``candidates``, coverage and Gini are over
the candidates (the only items a list can hold); on a cold-item split every candidate is new to
training, so popularity is 0 and tail share 1 there, and say nothing.

With ``candidates`` (a cold-start evaluation), only those items are ranked: every other item
scores ``-inf``. :func:`evaluate_split` does this by itself when every item of the evaluated
part is new to training (a cold-item split: the question is then which of the new items each
user will take, since a model cannot know an item's popularity before anyone saw it).

Tied scores are ranked in :func:`torch.topk`'s order, which knows nothing of relevance (not
optimistic, not pessimistic) but is not random either: it is not item-index order, and it may
differ between a CPU and a GPU, so a model that ties across the top-K cut-off (a constant
score, most-popular's equal counts) can score a little differently on each. Scores are ranked in float32,
or float64 when the scoring function returns it (half precision is cast up first; its coarse
steps would tie near the cut-off).

Each metric is averaged over the evaluated users: users with at least one item in the
evaluated part (the others are skipped and not counted). A relevant item that is also in an
exclusion part stays in :math:`T_u` but can never be retrieved (RecBole does the same). When
kgrec splits one ``.inter`` file with the default ``duplicates="last"`` no (user, item) pair is
in two parts; given ``.train`` / ``.valid`` / ``.test`` files (or ``duplicates="keep"``) may
repeat a pair across parts, and such a pair then counts as a miss.

The loop runs over batches of users, never over single users: per batch, one ``(B, n_items)``
score matrix with the excluded entries set to ``-inf``, one ``torch.topk`` at ``max(ks)``, and
a lookup of the ``(B, max(ks))`` top items among the relevant ones (no ``(B, n_items)`` masks:
on 114k users and 30k items they took more than half the time), so memory is bounded by
``batch_size * n_items`` whatever the number of users.

Under data parallelism (DDP) each of ``W`` processes can rank a share of the users
(:class:`Shard`: every ``W``-th user from its rank on) and the per-metric sums and user counts
are added over the processes before the means: every process gets the metrics of all users for
``1 / W`` of the ranking work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from kgrec.data.dataset import Dataset, Interactions
from kgrec.data.info import short_head
from kgrec.eval.matrix import InteractionsLike, as_csr, interaction_matrix, is_stored, row_entries

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""``score_fn(users)``: ``(B,)`` int64 user indices -> ``(B, n_items)`` scores (higher = better)."""

METRICS = ("recall", "ndcg", "hit", "mrr", "precision")
LIST_METRICS = ("coverage", "popularity", "gini", "tail")  # beyond accuracy, given item popularity


class NaNScoresError(ValueError):
    """A scoring function gave NaN scores (a model whose weights diverged, most often)."""


_NAN_MESSAGE = "score_fn returned NaN scores: expected real numbers (-inf allowed)"


@dataclass(frozen=True)
class Shard:
    """This process's share of the evaluated users under data parallelism.

    Args:
        rank: this process's index in ``[0, world)``; it ranks users ``rank, rank + world, ...``
            of the evaluated ones (in index order).
        world: number of processes.
        sum: a ``(n,)`` float64 tensor -> its element-wise sum over every process (an
            all-reduce; every process must call it, with the same ``n``), on the CPU.
    """

    rank: int
    world: int
    sum: Callable[[torch.Tensor], torch.Tensor]

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world:
            raise ValueError(f"Shard(rank={self.rank}, world={self.world}): expected 0 <= rank < world")


@torch.no_grad()
def evaluate_ranking(
    score_fn: ScoreFn,
    target: Interactions,
    exclude: InteractionsLike | None,
    n_users: int,
    n_items: int,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    candidates: torch.Tensor | None = None,
    shard: Shard | None = None,
    popularity: torch.Tensor | None = None,
) -> dict[str, float]:
    """Full-ranking Recall, NDCG, Hit, MRR and Precision at each K (formulas in the module doc),
    and with ``popularity`` the lists' Coverage, Popularity, Gini and Tail share.

    Args:
        score_fn: ``(B,)`` LongTensor of user indices -> ``(B, n_items)`` float scores. May
            return scores on any device; masks follow the scores' device.
        target: the evaluated part (e.g. ``dataset.test``): its pairs are the relevant items.
        exclude: items removed from each user's ranking: an :class:`Interactions`, a list of
            them (``[dataset.train, dataset.valid]`` when testing), a torch sparse CSR or a
            scipy CSR matrix of shape ``(n_users, n_items)``; ``None`` excludes nothing.
        n_users: number of users (rows of the matrices).
        n_items: number of items (columns; ``score_fn`` must return this many scores).
        ks: cut-offs, each in ``[1, n_items]``.
        batch_size: users scored at once; memory is ``O(batch_size * n_items)``.
        candidates: ``(n_items,)`` bool, the only items ranked (others score ``-inf``); ``None``
            ranks the whole catalogue.
        shard: rank only this process's share of the users and add the sums over the
            processes (every process must call this together); ``None`` ranks every user.
        popularity: ``(n_items,)`` each item's number of training interactions; adds
            ``"coverage@K"``, ``"popularity@K"``, ``"gini@K"`` and ``"tail@K"``.

    Returns:
        ``{"recall@K", "ndcg@K", "hit@K", "mrr@K", "precision@K"}`` for each ``K`` in ``ks``,
        each the mean over evaluated users (with ``popularity``, then ``"coverage@K"``,
        ``"popularity@K"``, ``"gini@K"``, ``"tail@K"``), plus ``"n_users"``: how many users were
        evaluated (those with at least one item in ``target``), over every shard.

    Raises:
        ValueError: bad ``ks`` / ``batch_size``, or ``score_fn`` returned the wrong shape or NaN
            (:class:`NaNScoresError`; with ``shard``, on every process once any one meets NaN).
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1 or ks[-1] > n_items:
        raise ValueError(f"ks={ks}: expected cut-offs in [1, n_items={n_items}]")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected a positive integer")
    k_max = ks[-1]
    relevant = interaction_matrix(target, n_users, n_items)
    excluded = None if exclude is None else as_csr(exclude, n_users, n_items)
    if candidates is not None and tuple(candidates.shape) != (n_items,):
        raise ValueError(f"candidates: expected a ({n_items},) bool mask, got shape {tuple(candidates.shape)}")
    users = torch.from_numpy(np.unique(np.asarray(target.user, dtype=np.int64)))  # skips users with no target
    if shard is not None:
        users = users[shard.rank :: shard.world]
    # discount[k] = 1 / log2(k + 2) for 0-based rank k; ideal[n] = sum of the first n discounts
    discount = 1.0 / torch.log2(torch.arange(k_max, dtype=torch.float64) + 2.0)
    ideal = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(discount, 0)])
    totals = {f"{m}@{k}": 0.0 for k in ks for m in METRICS}
    if popularity is not None:
        if tuple(popularity.shape) != (n_items,):
            raise ValueError(f"popularity: expected ({n_items},) counts, got shape {tuple(popularity.shape)}")
        popularity = popularity.double().cpu()
        in_tail = torch.ones(n_items, dtype=torch.float64)
        in_tail[torch.from_numpy(short_head(popularity.numpy()))] = 0.0
        totals |= {f"{m}@{k}": 0.0 for k in ks for m in ("popularity", "tail")}
        totals["listed_users"] = 0.0  # users whose list holds an item: popularity and tail average over them
        counts = {k: torch.zeros(n_items, dtype=torch.float64) for k in ks}  # c_i: the lists holding item i

    saw_nan = False
    for batch in torch.split(users, batch_size):
        scores = score_fn(batch)  # (B, n_items)
        if scores.shape != (len(batch), n_items):
            shape, expected = tuple(scores.shape), (len(batch), n_items)
            raise ValueError(f"score_fn returned shape {shape}: expected {expected}")
        device = scores.device
        scores = scores if scores.dtype == torch.float64 else scores.float()  # float64 kept: rounding would tie
        if excluded is not None:  # out of place: score_fn's tensor may be the caller's own
            row, col = row_entries(excluded, batch)  # the batch's excluded (row, item) entries
            minus_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=device)  # index_put needs one dtype
            scores = scores.index_put((row.to(device), col.to(device)), minus_inf)
        if candidates is not None:
            scores = scores.masked_fill(~candidates.to(device, torch.bool), float("-inf"))
        top_scores, top_items = torch.topk(scores, k_max, dim=1)  # (B, K_max)
        if torch.isnan(top_scores).any():  # topk ranks NaN above every number: a row with one shows it here
            if shard is None:
                raise NaNScoresError(_NAN_MESSAGE)
            saw_nan = True  # raised after the all-reduce: the other processes wait in it for this one
            break
        # a -inf item (excluded) only reaches the top K when too few items are left: never a hit
        listed, finite = top_items.cpu(), (top_scores > float("-inf")).cpu()  # (B, K_max), moved off the device once
        hits = (is_stored(relevant, batch, listed) & finite).double()  # (B, K_max)
        n_rel = (relevant.crow_indices()[batch + 1] - relevant.crow_indices()[batch]).double()  # (B,) >= 1 here
        # 0-based rank of the first hit (argmax returns the first maximum), K_max when none
        first_hit = torch.where(hits.any(1), hits.argmax(1), k_max).double()  # (B,)
        for k in ks:
            n_hit = hits[:, :k].sum(1)
            dcg = (hits[:, :k] * discount[:k]).sum(1)
            idcg = ideal[torch.clamp(n_rel, max=k).long()]
            totals[f"recall@{k}"] += (n_hit / n_rel).sum().item()
            totals[f"precision@{k}"] += (n_hit / k).sum().item()
            totals[f"hit@{k}"] += (n_hit > 0).double().sum().item()
            totals[f"ndcg@{k}"] += (dcg / idcg).sum().item()
            totals[f"mrr@{k}"] += torch.where(first_hit < k, 1.0 / (first_hit + 1.0), 0.0).sum().item()
        if popularity is not None:  # an excluded (-inf) item that fills a short list counts as no item
            real = finite.double()
            totals["listed_users"] += finite[:, 0].sum().item()  # sorted: a list's first item is real unless none is
            for k in ks:
                n_real = real[:, :k].sum(1).clamp(min=1)  # (B,): a list cut short counts over its real items
                totals[f"popularity@{k}"] += ((popularity[listed[:, :k]] * real[:, :k]).sum(1) / n_real).sum().item()
                totals[f"tail@{k}"] += ((in_tail[listed[:, :k]] * real[:, :k]).sum(1) / n_real).sum().item()
                counts[k] += torch.bincount(listed[:, :k].reshape(-1), real[:, :k].reshape(-1), minlength=n_items)

    n = len(users)
    if shard is not None:  # sums and counts over every process (one all-reduce), then the means
        listed_counts = [counts[k] for k in ks] if popularity is not None else []
        summed = shard.sum(torch.cat([torch.tensor([*totals.values(), n, saw_nan], dtype=torch.float64), *listed_counts]))
        if summed[len(totals) + 1] > 0:  # some process met NaN scores: every one refuses them
            raise NaNScoresError(_NAN_MESSAGE)
        sums, n = summed[: len(totals)].tolist(), round(summed[len(totals)].item())
        totals = dict(zip(totals, sums, strict=True))
        if popularity is not None:
            counts = dict(zip(ks, summed[len(totals) + 2 :].split(n_items), strict=True))
    result = {name: (total / n if n else 0.0) for name, total in totals.items()}
    if popularity is not None:
        listed_users = totals["listed_users"]
        for name in [f"{m}@{k}" for k in ks for m in ("popularity", "tail")]:
            result[name] = totals[name] / listed_users if listed_users else 0.0
        listable = candidates.cpu().bool() if candidates is not None else torch.ones(n_items, dtype=torch.bool)
        for k in ks:
            result[f"coverage@{k}"] = (counts[k][listable] > 0).double().mean().item()
            result[f"gini@{k}"] = gini(counts[k][listable])
        result = {name: result[name] for name in [f"{m}@{k}" for k in ks for m in METRICS + LIST_METRICS]}
    result["n_users"] = n
    return result


def gini(counts: torch.Tensor) -> float:
    """Gini coefficient of non-negative ``counts`` ``(n,)`` (formula in the module doc): 0 when
    all are equal, :math:`1 - 1/n` when one holds everything; 0 for all zeros."""
    c = torch.sort(counts.double()).values
    n, total = len(c), c.sum().item()
    if n == 0 or total == 0:
        return 0.0
    j = torch.arange(1, n + 1, dtype=torch.float64)
    return ((2 * j - n - 1) * c).sum().item() / (n * total)


def evaluate_split(
    score_fn: ScoreFn,
    dataset: Dataset,
    part: Literal["valid", "test"] = "test",
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    shard: Shard | None = None,
) -> dict[str, float]:
    """:func:`evaluate_ranking` on a dataset part with the leakage-safe exclusion set.

    ``part="valid"`` ranks against ``dataset.valid`` excluding ``train``; ``part="test"``
    ranks against ``dataset.test`` excluding ``train`` and ``valid``. Model selection must use
    ``"valid"`` only. Item popularity, for the list metrics, is counted on ``train``. When every item of the part is new to training (a cold-item split), the
    ranking is among that part's items only (:func:`cold_candidates`). Users with no training
    interaction (new after a global time split) are skipped (:func:`known_users_part`).
    """
    if part not in ("valid", "test"):
        raise ValueError(f"part='{part}': expected 'valid' or 'test'")
    target = known_users_part(dataset, part)
    exclude = [dataset.train] if part == "valid" else [dataset.train, dataset.valid]
    candidates = cold_candidates(dataset, part)
    popularity = torch.bincount(torch.as_tensor(dataset.train.item, dtype=torch.long), minlength=dataset.n_items)
    return evaluate_ranking(
        score_fn, target, exclude, dataset.n_users, dataset.n_items, ks, batch_size, candidates, shard, popularity
    )


def known_users_part(dataset: Dataset, part: Literal["valid", "test"]) -> Interactions:
    """The interactions of ``part`` whose user has at least one training interaction: what
    every metric is computed on (a user first seen after a global time split has nothing of
    theirs for a model to go by)."""
    return _of_known_users(dataset, getattr(dataset, part))


def known_users_negatives(dataset: Dataset, part: Literal["valid", "test"]) -> Interactions | None:
    """The pairs of ``part`` labelled negative in the data (:meth:`~kgrec.data.Dataset.negatives`)
    whose user has a training interaction, as :func:`known_users_part`; ``None`` without any."""
    negatives = dataset.negatives(part)
    return _of_known_users(dataset, negatives) if negatives is not None else None


def _of_known_users(dataset: Dataset, target: Interactions) -> Interactions:
    known = dataset.train.has_user(dataset.n_users)
    return target if known[target.user].all() else target.select(known[target.user])


def cold_candidates(dataset: Dataset, part: Literal["valid", "test"]) -> torch.Tensor | None:
    """``(n_items,)`` bool of the items in ``part`` when none of them has a training
    interaction (a cold-item split), else ``None`` (rank the whole catalogue)."""
    target = getattr(dataset, part)
    if len(target) == 0:
        return None
    in_part = target.has_item(dataset.n_items)
    if (dataset.train.has_item(dataset.n_items) & in_part).any():
        return None
    return torch.from_numpy(in_part)
