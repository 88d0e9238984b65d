"""The baselines a trained run is judged against on its own split: most-popular, and EASE with
its L2 weight chosen on valid (``kgrec eval RUN --baselines``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from kgrec.baselines.ease import EASE
from kgrec.baselines.popularity import MostPopular
from kgrec.baselines.tuning import tune_on_valid
from kgrec.data.dataset import Dataset
from kgrec.eval.ranking import evaluate_split

#: EASE keeps an ``I x I`` float32 matrix and its inverse (12.8 GB at 40,000 items), the
#: bound the EASE teacher has too; above it the baseline is left out.
MAX_EASE_ITEMS = 40_000

#: The cut-offs the baselines are ranked at, beside which a run or lists are ranked too.
REFERENCE_KS = (10, 20)


def with_reference_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """``ks`` and :data:`REFERENCE_KS`, sorted: where a run is ranked to be set beside the baselines."""
    return tuple(sorted({*ks, *REFERENCE_KS}))


def reference_metrics(
    dataset: Dataset,
    part: Literal["valid", "test"] = "test",
    grid: Sequence[float] = EASE.REG_GRID,
    device: torch.device | str | None = None,
) -> dict[str, dict[str, float]]:
    """Ranking metrics of most-popular and of EASE on ``dataset``'s ``part``, by name
    (``"EASE (lambda=500, chosen on valid)"``). EASE's :math:`\\lambda` is the value of ``grid``
    with the best valid NDCG@10 (:func:`tune_on_valid`; test is never looked at to choose
    it); the name says when it is an end of ``grid`` (``"EASE (lambda=10000, chosen on valid,
    the end of the grid 50-10000)"``), where a wider grid may do better. EASE is left out above :data:`MAX_EASE_ITEMS` items. ``device``: where EASE is solved
    (default: the GPU when there is one; its closed form costs about :math:`I^3`, seconds for
    thousands of items on a CPU, minutes per grid value for tens of thousands)."""
    popular = MostPopular().fit(dataset.train, dataset.n_users, dataset.n_items)
    rows = {"most-popular": evaluate_split(popular.score, dataset, part)}
    if dataset.n_items <= MAX_EASE_ITEMS:
        device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        ease = tune_on_valid(dataset, lambda reg: EASE(reg, device), grid)
        edge = f", the end of the grid {min(grid):g}-{max(grid):g}" if ease.at_edge else ""  # the best may lie beyond
        rows[f"EASE (lambda={ease.best:g}, chosen on valid{edge})"] = evaluate_split(ease.model.score, dataset, part)
    return rows
