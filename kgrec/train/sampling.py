"""Training samples: negatives drawn against the TRAINING positives only, corrupted KG triples.

Leakage rule: the exclusion list of the negative sampler is built from ``dataset.train`` alone,
so valid/test items of a user can be drawn as negatives (as they would be in deployment, where
the future is unknown). All draws take an explicit ``torch.Generator``, seeded per step, so a
resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import torch
from torch import Tensor


class NegativeSampler:
    """Uniform negatives ``j`` with ``(u, j)`` not a training pair (rejection sampling, vectorised).

    Args:
        user: training users (N,); ``item``: training items (N,); ``n_items``: catalogue size.
        max_rounds: redraw rounds for rejected samples; what is still rejected after them is kept
            (a negligible share on real data, where users see a small part of the catalogue).
    """

    def __init__(self, user: Tensor, item: Tensor, n_items: int, max_rounds: int = 10) -> None:
        self.n_items = n_items
        self.max_rounds = max_rounds
        self.keys = torch.unique(user.long() * n_items + item.long())  # sorted (N,)

    def is_positive(self, user: Tensor, item: Tensor) -> Tensor:
        """Whether each ``(user, item)`` is a training pair (same shapes, bool)."""
        if self.keys.device != user.device:
            self.keys = self.keys.to(user.device)  # once, not every call
        keys = self.keys
        query = user.long() * self.n_items + item.long()
        pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        return keys[pos] == query

    def sample(self, user: Tensor, n: int, generator: torch.Generator) -> Tensor:
        """``(B, n)`` negatives for the ``(B,)`` users."""
        users = user.view(-1, 1).expand(-1, n)
        device = generator.device
        neg = torch.randint(0, self.n_items, users.shape, generator=generator, device=device).to(user.device)
        for _ in range(self.max_rounds):
            bad = self.is_positive(users, neg)
            if not bad.any():
                break
            redraw = torch.randint(0, self.n_items, (int(bad.sum()),), generator=generator, device=device)
            neg[bad] = redraw.to(user.device)
        return neg


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
