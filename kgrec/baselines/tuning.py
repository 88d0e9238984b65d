"""Hyper-parameter selection on the validation part only (the test part is never looked at)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kgrec.baselines.base import Recommender
from kgrec.data.dataset import Dataset
from kgrec.eval.ranking import evaluate_split


@dataclass
class TuneResult:
    """Outcome of :func:`tune_on_valid`.

    Attributes:
        best: the chosen value from the grid.
        model: the model built with ``best`` and fitted on train.
        metric: the metric that chose it, e.g. ``"ndcg@10"``.
        valid: validation metrics of every grid value, in grid order.
    """

    best: Any
    model: Recommender
    metric: str
    valid: dict[Any, dict[str, float]] = field(default_factory=dict)


def tune_on_valid(
    dataset: Dataset,
    build: Callable[[Any], Recommender],
    grid: Sequence[Any],
    metric: str = "ndcg@10",
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
) -> TuneResult:
    """Fit ``build(value)`` on train for each grid value; keep the best by valid ``metric``.

    Validation ranks ``dataset.valid`` with ``dataset.train`` excluded; ``dataset.test`` is
    not read. Ties go to the earlier grid value. Example::

        result = tune_on_valid(ds, EASE, EASE.REG_GRID)
        test = evaluate_split(result.model.score, ds, "test")

    Args:
        dataset: the split dataset.
        build: a value of the grid -> an unfitted model (e.g. the class ``EASE``).
        grid: the candidate values.
        metric: an accuracy key of :func:`~kgrec.eval.evaluate_ranking`'s result (higher = better).
        ks, batch_size: passed to the evaluation.
    """
    if not grid:
        raise ValueError("grid is empty: expected at least one candidate value")
    result: TuneResult | None = None
    best_value = float("-inf")
    valid: dict[Any, dict[str, float]] = {}
    for value in grid:
        model = build(value).fit(dataset.train, dataset.n_users, dataset.n_items)
        metrics = evaluate_split(model.score, dataset, "valid", ks, batch_size)
        if metric not in metrics:
            raise ValueError(f"metric '{metric}': expected one of {', '.join(metrics)}")
        if metrics.get("n_users", 1) == 0:
            raise ValueError("the valid part has no interactions to tune on: give the split a valid share")
        valid[value] = metrics
        if metrics[metric] > best_value:
            best_value = metrics[metric]
            result = TuneResult(best=value, model=model, metric=metric)
        del model
    assert result is not None
    result.valid = valid
    return result
