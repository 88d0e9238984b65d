"""Most-popular baseline: every user gets the items ranked by their training interaction count."""

from __future__ import annotations

import numpy as np
import torch

from kgrec.data.dataset import Interactions


class MostPopular:
    """Non-personalised popularity ranking.

    .. math::
        s(u, i) = c_i = |\\{(u', i) \\in \\mathcal{D}_{train}\\}|

    the number of training interactions of item ``i``, the same for every user (items never
    seen in training score 0). With full-ranking evaluation the user's own training items
    are masked afterwards, so each user gets the most popular items they have not seen. Items
    with equal counts tie, and the evaluation orders ties as :func:`torch.topk` does (neither by
    item index nor at random; :mod:`kgrec.eval.ranking`).
    """

    def __init__(self) -> None:
        self.counts: torch.Tensor | None = None  # (n_items,) float32

    def fit(self, train: Interactions, n_users: int, n_items: int) -> MostPopular:
        """Count each item's training interactions."""
        item = np.asarray(train.item, dtype=np.int64)
        if len(item) and (item.min() < 0 or item.max() >= n_items):
            raise ValueError(f"train item index out of range: expected indices in [0, {n_items})")
        self.counts = torch.from_numpy(np.bincount(item, minlength=n_items).astype(np.float32))
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``(B,)`` users -> ``(B, n_items)``: the popularity row repeated (a view, not a copy)."""
        if self.counts is None:
            raise RuntimeError("MostPopular.score called before fit")
        return self.counts.expand(len(users), -1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
