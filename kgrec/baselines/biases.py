"""The classic rating baselines a run's rating tower is judged against (``kgrec eval RUN
--baselines``): the global mean rating, and the user + item biases of Koren's baseline
predictor with the shrinkage chosen on valid RMSE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from kgrec.baselines.tuning import TuneResult
from kgrec.data.dataset import Dataset, Interactions
from kgrec.eval.pointwise import mae, rmse
from kgrec.eval.ranking import known_users_part


def _shrunk_means(index: np.ndarray, residual: np.ndarray, counts: np.ndarray, reg: float) -> np.ndarray:
    """Per position of ``counts``: the sum of its ``residual`` over :math:`\\lambda` + its count
    (0 where the count is 0, also at :math:`\\lambda = 0`)."""
    sums = np.bincount(index, weights=residual, minlength=len(counts))
    return np.divide(sums, reg + counts, out=np.zeros(len(counts)), where=counts > 0)


def _indices(values: np.ndarray | torch.Tensor, size: int, name: str) -> np.ndarray:
    """``values`` as int64 indices in ``[0, size)``; a :class:`ValueError` otherwise (numpy would
    read ``-1`` as the last user's bias, without a word)."""
    index = np.asarray(values, dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= size):
        raise ValueError(f"{name} index out of range: expected indices in [0, {size}) as fitted")
    return index


class BiasBaseline:
    """The baseline predictor of Koren (KDD 2008, "Factor in the neighbors"): the global mean
    rating plus a user and an item bias, each a shrunk mean of what is left to explain.

    .. math::
        \\hat r_{ui} = \\mathrm{clamp}(\\mu + b_u + b_i, r_{min}, r_{max})

        b_i = \\frac{\\sum_{u \\in R(i)} (r_{ui} - \\mu - b_u)}{\\lambda + |R(i)|} \\qquad
        b_u = \\frac{\\sum_{i \\in R(u)} (r_{ui} - \\mu - b_i)}{\\lambda + |R(u)|}

    where :math:`\\mu` is the mean training rating, :math:`R(i)` the training users of item
    :math:`i` and :math:`R(u)` the training items of user :math:`u`. Starting from
    :math:`b_u = 0`, one round computes every :math:`b_i` and then every :math:`b_u` (Koren's
    formulas exactly, ``rounds=1``); further rounds alternate the two updates, each the exact
    minimiser of :math:`\\sum (r_{ui} - \\mu - b_u - b_i)^2 + \\lambda (\\sum_u b_u^2 + \\sum_i
    b_i^2)` in its own biases, so the rounds converge to that least-squares fit. A user or item
    without training ratings gets bias 0; predictions are clamped to the training ratings'
    range :math:`[r_{min}, r_{max}]`. Everything is fitted on the training ratings alone, with
    :func:`numpy.bincount` (no loop over users or items).

    Args:
        reg: the shrinkage :math:`\\lambda \\geq 0` (``0``: plain means of the residuals).
        rounds: alternating rounds of the two updates (at least 1).
    """

    REG_GRID: tuple[float, ...] = (0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0)  # searched on valid RMSE
    DEFAULT_REG = 25.0  # used when the valid part has no ratings to choose on

    def __init__(self, reg: float = DEFAULT_REG, rounds: int = 10) -> None:
        if not np.isfinite(reg) or reg < 0:
            raise ValueError(f"reg={reg}: expected a finite shrinkage >= 0")
        if rounds < 1:
            raise ValueError(f"rounds={rounds}: expected at least 1")
        self.reg = float(reg)
        self.rounds = int(rounds)
        self.mean: float | None = None
        self.range: tuple[float, float] | None = None
        self.user_bias: np.ndarray | None = None  # (n_users,) float64
        self.item_bias: np.ndarray | None = None  # (n_items,) float64

    def fit(self, train: Interactions, n_users: int, n_items: int) -> BiasBaseline:
        """Learn :math:`\\mu`, the biases and the clamp range from the training ratings."""
        if train.rating is None or len(train) == 0:
            raise ValueError("the training part has no ratings: the bias baseline needs rated interactions")
        user = np.asarray(train.user, dtype=np.int64)
        item = np.asarray(train.item, dtype=np.int64)
        if user.min() < 0 or user.max() >= n_users or item.min() < 0 or item.max() >= n_items:
            raise ValueError(f"train index out of range: expected users in [0, {n_users}) and items in [0, {n_items})")
        rating = np.asarray(train.rating, dtype=np.float64)
        self.mean = float(rating.mean())
        self.range = (float(rating.min()), float(rating.max()))
        residual = rating - self.mean
        user_count = np.bincount(user, minlength=n_users).astype(np.float64)
        item_count = np.bincount(item, minlength=n_items).astype(np.float64)
        user_bias = np.zeros(n_users)
        item_bias = np.zeros(n_items)
        for _ in range(self.rounds):
            item_bias = _shrunk_means(item, residual - user_bias[user], item_count, self.reg)
            user_bias = _shrunk_means(user, residual - item_bias[item], user_count, self.reg)
        self.user_bias, self.item_bias = user_bias, item_bias
        return self

    def _fitted(self) -> tuple[float, tuple[float, float], np.ndarray, np.ndarray]:
        if self.mean is None or self.range is None or self.user_bias is None or self.item_bias is None:
            raise RuntimeError("BiasBaseline used before fit")
        return self.mean, self.range, self.user_bias, self.item_bias

    def predict(self, users: np.ndarray | torch.Tensor, items: np.ndarray | torch.Tensor) -> np.ndarray:
        """``(N,)`` users and items -> ``(N,)`` float64 predicted ratings :math:`\\hat r_{ui}`."""
        mean, (low, high), user_bias, item_bias = self._fitted()
        users, items = _indices(users, len(user_bias), "users"), _indices(items, len(item_bias), "items")
        return np.clip(mean + user_bias[users] + item_bias[items], low, high)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``(B,)`` users -> ``(B, n_items)`` float32 predicted ratings of every item (a ranking by
        item bias, the same order for every user)."""
        mean, (low, high), user_bias, item_bias = self._fitted()
        rows = mean + user_bias[_indices(users.cpu(), len(user_bias), "users")][:, None] + item_bias[None, :]
        return torch.from_numpy(np.clip(rows, low, high).astype(np.float32))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reg={self.reg:g}, rounds={self.rounds})"


def _errors(predicted: np.ndarray, part: Interactions) -> dict[str, float]:
    """RMSE and MAE of ``predicted`` against ``part``'s ratings, as the run's evaluation computes
    them (float32 targets, :mod:`kgrec.eval.pointwise`)."""
    target = torch.as_tensor(part.rating, dtype=torch.float32)
    return {"rmse": rmse(predicted, target), "mae": mae(predicted, target)}


def tune_biases(dataset: Dataset, grid: Sequence[float] = BiasBaseline.REG_GRID, rounds: int = 10) -> TuneResult:
    """:class:`BiasBaseline` fitted on train for each :math:`\\lambda` of ``grid``, the one with
    the lowest valid RMSE kept (ties go to the earlier value); the test part is not read. Valid
    counts the pairs of the users with training interactions, as the run's evaluation does.
    ``valid`` of the result holds each value's valid RMSE and MAE; it is empty, and
    :attr:`BiasBaseline.DEFAULT_REG` is used, when the valid part has no such rated pairs."""
    if not grid:
        raise ValueError("grid is empty: expected at least one shrinkage value")
    valid = known_users_part(dataset, "valid")
    if valid.rating is None or len(valid) == 0:
        model = BiasBaseline(BiasBaseline.DEFAULT_REG, rounds).fit(dataset.train, dataset.n_users, dataset.n_items)
        return TuneResult(best=BiasBaseline.DEFAULT_REG, model=model, metric="rmse")  # type: ignore[arg-type]
    result: TuneResult | None = None
    scores: dict[float, dict[str, float]] = {}
    for reg in grid:
        model = BiasBaseline(reg, rounds).fit(dataset.train, dataset.n_users, dataset.n_items)
        scores[reg] = _errors(model.predict(valid.user, valid.item), valid)
        if result is None or scores[reg]["rmse"] < scores[result.best]["rmse"]:
            result = TuneResult(best=reg, model=model, metric="rmse")  # type: ignore[arg-type]
    assert result is not None
    result.valid = scores  # type: ignore[assignment]
    return result


def rating_reference(
    dataset: Dataset, part: Literal["valid", "test"] = "test", grid: Sequence[float] = BiasBaseline.REG_GRID
) -> dict[str, dict[str, float]]:
    """RMSE and MAE of the classic rating baselines on ``dataset``'s ``part``, by name: the mean
    training rating (``"mean rating"``) and :class:`BiasBaseline` with :math:`\\lambda` chosen on
    valid RMSE (``"user + item biases (lambda=25, chosen on valid)"``; :func:`tune_biases`).
    Both are fitted on the training ratings only, and scored on the pairs the run's rating
    tower is scored on: the part's ratings of users with training interactions (items new to
    training included: their bias is 0). Empty when the training part or ``part`` has no
    ratings, or ``part`` has no such pairs."""
    target = known_users_part(dataset, part)
    if dataset.train.rating is None or len(dataset.train) == 0 or target.rating is None or len(target) == 0:
        return {}
    tuned = tune_biases(dataset, grid)
    model: BiasBaseline = tuned.model  # type: ignore[assignment]
    mean = float(model.mean)  # type: ignore[arg-type]
    chosen = "chosen on valid" if tuned.valid else "default: no valid ratings to choose on"
    return {
        "mean rating": _errors(np.full(len(target), mean), target),
        f"user + item biases (lambda={tuned.best:g}, {chosen})": _errors(model.predict(target.user, target.item), target),
    }
