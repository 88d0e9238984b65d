"""Training samples: negatives drawn against the TRAINING positives only, corrupted KG triples.

Leakage rule: the exclusion list of the negative sampler is built from ``dataset.train`` alone,
so valid/test items of a user can be drawn as negatives (as they would be in deployment, where
the future is unknown). All draws take an explicit ``torch.Generator``, seeded per step, so a
resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor


class NegativeSampler:
    """Uniform negatives ``j`` with ``(u, j)`` not a training pair.

    Rejection sampling, vectorised: ``max_rounds`` redraw rounds for the draws that hit a
    training pair, which leave almost none on real data (users see a small part of the
    catalogue); what is still rejected after them is then drawn exactly, uniformly from the
    items the user has not interacted with in training (:meth:`_complement`), so a heavy user of
    a small catalogue gets true negatives too, and the sampler never loops on them. A user whose
    training items cover the whole catalogue has no negative to draw: their rows keep uniform
    draws (training positives; the loss drops a draw equal to the row's own item). The draws
    that the rejection rounds accept are those of plain rejection sampling, from the same
    stream of ``generator``; the exact draws come from a generator derived from its state, so
    they leave that stream (a step's KG triples) as it was.

    Args:
        user: training users (N,); ``item``: training items (N,); ``n_items``: catalogue size.
        max_rounds: redraw rounds of the rejection sampling.
    """

    def __init__(self, user: Tensor, item: Tensor, n_items: int, max_rounds: int = 10) -> None:
        self.n_items = n_items
        self.max_rounds = max_rounds
        self.keys = torch.unique(user.long() * n_items + item.long())  # sorted (N,)
        self._ranks: Tensor | None = None  # (N,) per-user complement ranks (_complement), built on first use

    def is_positive(self, user: Tensor, item: Tensor) -> Tensor:
        """Whether each ``(user, item)`` is a training pair (same shapes, bool)."""
        if self.keys.device != user.device:
            self.keys = self.keys.to(user.device)  # once, not every call
            self._ranks = None
        keys = self.keys
        if keys.numel() == 0:  # no training pairs: nothing is a positive
            return torch.zeros(user.shape, dtype=torch.bool, device=user.device)
        query = user.long() * self.n_items + item.long()
        pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        return keys[pos] == query

    def sample(self, user: Tensor, n: int, generator: torch.Generator) -> Tensor:
        """``(B, n)`` int64 negatives for the ``(B,)`` users, on ``user``'s device."""
        users = user.view(-1, 1).expand(-1, n)
        device = generator.device
        neg = torch.randint(0, self.n_items, users.shape, generator=generator, device=device).to(user.device)
        for _ in range(self.max_rounds):
            bad = self.is_positive(users, neg)
            if not bad.any():
                return neg
            redraw = torch.randint(0, self.n_items, (int(bad.sum()),), generator=generator, device=device)
            neg[bad] = redraw.to(user.device)
        bad = self.is_positive(users, neg)
        if bad.any():
            neg[bad] = self._complement(users[bad], neg[bad], _derived_generator(generator))
        return neg

    def _complement(self, users: Tensor, drawn: Tensor, generator: torch.Generator) -> Tensor:
        r"""For each of ``users`` (M,), an item drawn uniformly from those the user has no training
        pair with; ``drawn`` (M,) kept where there is none.

        With the user's training items :math:`p_0 < p_1 < \dots` (rank :math:`k`), the
        :math:`r`-th item outside them is :math:`r + \#\{k : p_k - k \le r\}`, and
        :math:`p_k - k` (the items outside below :math:`p_k`) does not decrease with :math:`k`,
        so one ``searchsorted`` over ``user * (n + 1) + p_k - k`` (sorted) finds it for all rows."""
        keys, n = self.keys, self.n_items
        if self._ranks is None:
            owner = keys // n
            start = torch.searchsorted(keys, owner * n)  # (N,) where each key's user begins
            rank = torch.arange(len(keys), device=keys.device) - start
            self._ranks = owner * (n + 1) + (keys - owner * n) - rank  # sorted (N,)
        users = users.long()
        start = torch.searchsorted(keys, users * n)
        free = n - (torch.searchsorted(keys, (users + 1) * n) - start)  # (M,) items outside the user's
        r = torch.rand(len(users), dtype=torch.float64, generator=generator) * free.cpu()  # uniform in [0, free)
        r = torch.minimum(r.long(), (free.cpu() - 1).clamp(min=0)).to(keys.device)
        below = torch.searchsorted(self._ranks, users * (n + 1) + r, right=True) - start
        return torch.where(free > 0, r + below, drawn)


def _derived_generator(generator: torch.Generator) -> torch.Generator:
    """A CPU generator seeded from ``generator``'s state, which it leaves as it was."""
    state = generator.get_state().cpu().numpy().tobytes()
    derived = torch.Generator(device="cpu")
    derived.manual_seed(int.from_bytes(hashlib.blake2b(state, digest_size=8).digest(), "little") >> 1)
    return derived


def sample_kg_batch(
    head: Tensor, relation: Tensor, tail: Tensor, n_nodes: int, size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""``size`` random triples ``(h, r, t)`` and a corrupted tail ``t'`` each, uniform over the
    nodes other than ``t``: draw :math:`c \sim U\{0, \dots, N-2\}` and set
    :math:`t' = c + [\![c \ge t]\!]`, so a "negative" is never the true tail itself."""
    if n_nodes < 2:
        raise ValueError(f"corrupting a tail needs at least 2 nodes, got {n_nodes}")
    device = generator.device
    pick = torch.randint(0, len(head), (min(size, len(head)),), generator=generator, device=device).to(head.device)
    h, r, t = head[pick], relation[pick], tail[pick]
    corrupted = torch.randint(0, n_nodes - 1, pick.shape, generator=generator, device=device).to(head.device)
    return h, r, t, corrupted + (corrupted >= t).long()


SAMPLING_STREAM = 0
"""Stream of a step's negatives and KG triples (:func:`step_generator`)."""
DROPOUT_STREAM = 1
"""Stream of a step's dropout masks (the global generator, seeded before the step)."""
PCGRAD_STREAM = 2
"""Stream of the order in which a step's PCGrad projections visit the tasks."""


def step_seed(seed: int, step: int, rank: int = 0, stream: int = SAMPLING_STREAM) -> int:
    """The seed of training step ``step`` on process ``rank`` (DDP) for random ``stream``.

    Distinct ranks draw distinct negatives, KG triples and dropout masks, and a step's dropout
    masks do not reuse the draws of its negatives (same seed, same uniform stream). Rank 0's
    sampling stream (what a single-process run samples from) is ``seed * 1_000_003 + step``.
    Rank and stream add odd 32-bit offsets, since torch's CPU generator reads only the low 32
    bits of a seed: for up to 64 ranks every (rank, stream) pair stays over 11 million steps
    away from every other (tested)."""
    return (seed * 1_000_003 + step + rank * 0x9E3779B1 + stream * 0x632BE5AB) % (2**63 - 1)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A CPU generator whose stream depends only on ``(seed, step, rank)`` (:func:`step_seed`)."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(step_seed(seed, step, rank))
    return generator
