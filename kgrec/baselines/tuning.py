"""Hyper-parameter selection on the validation part only (the test part is never looked at)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kgrec.baselines.base import Recommender
from kgrec.data.dataset import Dataset
from kgrec.eval.ranking import METRICS, evaluate_split, known_users_part


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

    @property
    def at_edge(self) -> bool:
        """Whether ``best`` is the smallest or the largest value tried, of two or more (values that
        are not all numbers: the grid's first or last): the optimum may lie beyond the grid, which
        is then worth widening on that side."""
        values = list(self.valid)
        if len(values) < 2:
            return False
        if all(isinstance(value, numbers.Real) for value in values):
            return self.best in (min(values), max(values))
        return self.best in (values[0], values[-1])  # values with no order: the grid's first and last


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
    not read. Ties go to the earlier grid value. The grid is not widened:
    :attr:`TuneResult.at_edge` says when the chosen value is one of its ends. Example::

        result = tune_on_valid(ds, EASE, EASE.REG_GRID)
        test = evaluate_split(result.model.score, ds, "test")

    Args:
        dataset: the split dataset.
        build: a value of the grid -> an unfitted model (e.g. the class ``EASE``).
        grid: the candidate values (a list, a tuple or a NumPy array).
        metric: an accuracy key of :func:`~kgrec.eval.evaluate_ranking`'s result (higher =
            better): ``"{m}@{k}"``, ``m`` one of :data:`~kgrec.eval.ranking.METRICS` and ``k``
            one of ``ks``.
        ks, batch_size: passed to the evaluation.

    Raises:
        ValueError: an empty grid, a metric that is not an accuracy metric at one of ``ks``, or
            a valid part with no user known to training; all before any model is fitted.
    """
    grid = list(grid)  # `not grid` of a NumPy array is ambiguous
    if not grid:
        raise ValueError("grid is empty: expected at least one candidate value")
    accuracy = [f"{m}@{int(k)}" for k in ks for m in METRICS]
    if metric not in accuracy:
        raise ValueError(f"metric '{metric}': expected an accuracy metric (higher = better), one of {', '.join(accuracy)}")
    if len(known_users_part(dataset, "valid")) == 0:
        raise ValueError(
            "the valid part has no interactions to tune on (none of a user with training interactions): "
            "give the split a valid share"
        )
    result: TuneResult | None = None
    best_value = float("-inf")
    valid: dict[Any, dict[str, float]] = {}
    for value in grid:
        model = build(value).fit(dataset.train, dataset.n_users, dataset.n_items)
        metrics = evaluate_split(model.score, dataset, "valid", ks, batch_size)
        valid[value] = metrics
        if metrics[metric] > best_value:
            best_value = metrics[metric]
            result = TuneResult(best=value, model=model, metric=metric)
        del model
    assert result is not None
    result.valid = valid
    return result
