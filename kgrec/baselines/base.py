"""The small interface every baseline follows: ``fit`` on train interactions, ``score`` users."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from kgrec.data.dataset import Interactions


@runtime_checkable
class Recommender(Protocol):
    """A model that scores every item for a batch of users (what the ranking evaluation needs)."""

    def fit(self, train: Interactions, n_users: int, n_items: int) -> Recommender:
        """Learn from the training interactions only; return ``self``."""
        ...

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``(B,)`` int64 user indices -> ``(B, n_items)`` float scores, higher = better."""
        ...
