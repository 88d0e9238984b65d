"""What the rating and like towers say about a user and items of a trained run
(:meth:`kgrec.retrieval.Recommender.predict`, ``kgrec predict``, ``POST /predict``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from kgrec.models import Encoded, MultiTaskRecommender


@dataclass
class Prediction:
    """What each task tower of the model says about one (user, item) pair.

    Attributes:
        item_id: the raw item token.
        title: its display name.
        rating: the rating tower's predicted rating, clamped to the data's range (``None``
            without a rating tower).
        like: the like tower's probability that the user likes the item (rates it at least the
            like threshold; ``None`` without a like tower).
        score: the retrieval tower's score, the inner product ``recommend`` ranks by (``None``
            without a retrieval tower).
    """

    item_id: str
    title: str
    rating: float | None
    like: float | None
    score: float | None

    def to_dict(self) -> dict[str, Any]:
        """The prediction as JSON, rounded to 6 decimals."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 6)

        return {"item_id": self.item_id, "title": self.title, "rating": rounded(self.rating), "like": rounded(self.like),
                "score": rounded(self.score)}  # fmt: skip


PAIR_BATCH = 65_536  # (user, item) pairs per pass of the rating and like towers


def tower_predictions(
    model: MultiTaskRecommender,
    encoded: Encoded,
    users: list[int],
    items: list[int],
    n_trained: int | None = None,
    added_fused: np.ndarray | None = None,
    added_text: np.ndarray | None = None,
) -> tuple[list[float] | None, list[float] | None]:
    """The rating tower's predicted ratings and the like tower's probabilities of each pair
    ``(users[j], items[j])`` (model indices; ``encoded`` is ``model.encode()``), each ``None``
    when the model has no such tower; the pairs go through the towers :data:`PAIR_BATCH` at a
    time (none at all when the model has neither tower). Call under ``torch.no_grad()``.

    Items from ``n_trained`` on are catalog positions of items added after training: row
    ``items[j] - n_trained`` of ``added_fused`` ``(m, d)`` is the fused vector they are scored
    by, and of ``added_text`` ``(m, t)`` their text vector (the like tower's text affinity
    reads it) (:meth:`~kgrec.models.MultiTaskRecommender.predict_cold`)."""
    tasks = model.config.tasks
    n_trained = model.sizes.num_items if n_trained is None else n_trained
    rating: list[float] | None = [] if "rating" in tasks else None
    like: list[float] | None = [] if "like" in tasks else None
    if rating is None and like is None:  # no tower to ask (model.tasks=[kg], say): a kept fused vector answers nothing
        return rating, like
    dtype = next(model.parameters()).dtype  # the added items' float32 fused rows are read in the model's
    for start in range(0, len(items), PAIR_BATCH):
        users_t = torch.as_tensor(users[start : start + PAIR_BATCH], dtype=torch.long)
        items_t = torch.as_tensor(items[start : start + PAIR_BATCH], dtype=torch.long)
        cold = items_t >= n_trained
        answers: dict[str, torch.Tensor] = {}
        if rating is not None:
            answers["rating"] = torch.zeros(len(items_t), dtype=torch.float64)
        if like is not None:
            answers["like"] = torch.zeros(len(items_t), dtype=torch.float64)
        warm = ~cold
        if bool(warm.any()):
            u, i = users_t[warm], items_t[warm]
            if rating is not None:
                answers["rating"][warm] = model.predict_rating(u, i, encoded).double()
            if like is not None:
                answers["like"][warm] = model.predict_like(u, i, encoded).double()
        if bool(cold.any()):
            if added_fused is None:
                raise ValueError("tower_predictions: items added after training need their fused vectors (added_fused)")
            rows = (items_t[cold] - n_trained).numpy()
            text = torch.as_tensor(added_text[rows]) if added_text is not None and added_text.shape[1] else None
            cold_answers = model.predict_cold(
                users_t[cold], torch.as_tensor(added_fused[rows]).to(dtype), text, encoded
            )
            for task, values in cold_answers.items():
                answers[task][cold] = values.double()
        if rating is not None:
            rating += answers["rating"].tolist()
        if like is not None:
            like += answers["like"].tolist()
    return rating, like
