r"""The query vector of a user the model has not seen, from the catalog positions of the items
they like (and stand-ins for a text of their interests or an item added after training).

A text, or an item added after training, counts as one more liked item shared by its
:data:`TEXT_FEEDBACK_ITEMS` stand-ins: the trained items ``search(text)`` or ``similar(item)``
ranks first (found by the caller, :class:`~kgrec.retrieval.recommender.Recommender`). An added
item's own vector was shaped by no interaction, and the model's history pathway reads trained
items only.

* :func:`history_user_vector`: the model's ``history`` user pathway over the liked items, the
  history shrunk toward the mean training user (:mod:`kgrec.retrieval.new_users` chooses how much).
* :func:`fold_in_vector`: with an ID-only user encoder, the user vector that best explains the liked
  items under a softmax over the frozen item vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from kgrec.errors import RetrievalError

if TYPE_CHECKING:
    from kgrec.models import HistoryPrior, MultiTaskRecommender

TEXT_FEEDBACK_ITEMS = 10  # a new user's text stands for the items it matches best
FOLD_IN_STEPS = 100
FOLD_IN_L2 = 1e-3
FOLD_IN_NEGATIVES = 200_000


def history_user_vector(
    model: MultiTaskRecommender,
    items: torch.Tensor,
    prior: HistoryPrior,
    trained: Sequence[int],
    shared: Sequence[np.ndarray],
) -> np.ndarray:
    """The model's new-user vector ``(d,)`` over the fused item vectors ``items`` (``encode().items``)
    of the ``trained`` liked positions and, for each of ``shared``, the mean of its stand-ins';
    call under ``torch.no_grad()``."""
    parts = [items[list(trained)]] + [items[s].mean(0, keepdim=True) for s in shared]
    return model.new_user_vector(torch.cat(parts), prior)[0].numpy().astype(np.float32)


def liked_with_weights(trained: Sequence[int], shared: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The positions :func:`fold_in_vector` fits and their weights: 1 for each ``trained`` liked item, and
    each of ``shared`` one liked item split evenly over its stand-ins."""
    liked, weights = list(trained), [1.0] * len(trained)
    for stand_ins in shared:
        liked += stand_ins.tolist()
        weights += [1.0 / len(stand_ins)] * len(stand_ins)
    return np.asarray(liked, np.int64), np.asarray(weights, np.float32)


def fold_in_vector(
    vectors: np.ndarray,
    candidates: np.ndarray,
    start: np.ndarray,
    liked: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    r"""A user vector ``(d,)`` for ``liked`` catalog positions, fitted to the frozen item
    ``vectors`` ``(n, d)`` from ``start`` ``(d,)``:

    .. math::
        \mathbf{u} = \arg\min_{\mathbf{u}} -\sum_{i \in L} w_i \log
            \frac{\exp \langle \mathbf{u}, \mathbf{x}_i \rangle}{\sum_{j} \exp \langle \mathbf{u}, \mathbf{x}_j \rangle}
            + \lambda \lVert \mathbf{u} \rVert^2

    (:math:`w` normalised to sum 1; :math:`j` over the sorted positions ``candidates``, or a
    fixed sample of :data:`FOLD_IN_NEGATIVES` of them beyond that, with the liked ones), with
    :data:`FOLD_IN_STEPS` Adam steps.
    """
    weights = np.ones(len(liked), np.float32) if weights is None else weights
    if not np.isin(liked, candidates).all():  # searchsorted below would fit the next candidate instead
        raise RetrievalError(f"fold-in: liked positions {np.setdiff1d(liked, candidates)[:5].tolist()} are not "
                             "candidates (removed from the catalog, or not catalog positions)")  # fmt: skip
    if len(candidates) > FOLD_IN_NEGATIVES:
        sample = np.random.default_rng(0).choice(candidates, FOLD_IN_NEGATIVES, replace=False)
        candidates = np.unique(np.concatenate([sample, liked]))
    items = torch.from_numpy(vectors[candidates])  # (m, d)
    where = torch.from_numpy(np.searchsorted(candidates, liked))
    w = torch.from_numpy(weights / weights.sum())
    u = torch.tensor(start, requires_grad=True)
    optimizer = torch.optim.Adam([u], lr=0.05)
    for _ in range(FOLD_IN_STEPS):
        loss = -(w * torch.log_softmax(items @ u, 0)[where]).sum() + FOLD_IN_L2 * (u @ u)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return u.detach().numpy().astype(np.float32)
