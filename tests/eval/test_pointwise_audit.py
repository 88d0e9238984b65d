"""Pointwise metrics audit: reversed or read-only arrays read as any other, values are paired by
shape (not by flattening two different shapes), and AUC agrees with a brute-force count of pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgrec.eval import auc, mae, rmse


def _pairwise_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(a positive outscores a negative), ties one half, by counting every pair."""
    wins = ties = 0
    for p in scores[labels == 1].tolist():
        for n in scores[labels == 0].tolist():
            wins += p > n
            ties += p == n
    return (wins + ties / 2) / ((labels == 1).sum() * (labels == 0).sum())


def test_reversed_and_read_only_numpy_arrays_are_read_like_copies():
    # np.sort(...)[::-1] has a negative stride: torch.as_tensor refused it ("At least one stride ... negative")
    pred, target = np.array([1.0, 2.5, 4.0, 5.0]), np.array([2.0, 2.0, 3.0, 5.0])
    assert rmse(pred[::-1], target[::-1]) == pytest.approx(rmse(pred, target))
    assert mae(pred[::-1], target) == pytest.approx(np.abs(pred[::-1] - target).mean())
    scores, labels = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    assert auc(scores[::-1], labels[::-1]) == pytest.approx(0.75)
    frozen = pred.copy()
    frozen.flags.writeable = False  # e.g. a pandas column's values
    assert rmse(frozen, target) == pytest.approx(rmse(pred, target))


def test_values_of_two_different_shapes_are_not_paired_by_flattening():
    pred = np.arange(6.0).reshape(2, 3)
    with pytest.raises(ValueError, match="same shape"):
        rmse(pred, pred.T.copy())  # (2, 3) against (3, 2): flattened, 1 met 3 and 2 met 4
    # a column against a row of the same values is one value per target
    assert rmse(torch.ones(4, 1), torch.ones(4)) == 0.0
    assert mae(np.ones((1, 3)), [1.0, 1.0, 2.0]) == pytest.approx(1 / 3)


def test_a_missing_value_is_called_not_finite_rather_than_a_type_error():
    with pytest.raises(ValueError, match="pred holds NaN"):
        rmse([1.0, None], [1.0, 2.0])  # was a TypeError about numpy.object_


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_the_brute_force_pair_count_with_ties_and_float32_neighbours(seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 6, 60).astype(np.float32)
    scores = base + np.where(rng.random(60) < 0.3, np.spacing(base + 1, dtype=np.float32), 0).astype(np.float32)
    labels = rng.integers(0, 2, 60)
    assert auc(scores, labels) == pytest.approx(_pairwise_auc(scores, labels), abs=1e-12)
    assert auc(torch.from_numpy(scores), torch.from_numpy(labels.astype(bool))) == pytest.approx(
        _pairwise_auc(scores, labels), abs=1e-12)  # fmt: skip


def test_auc_of_one_class_is_refused_and_rmse_of_nothing_too():
    with pytest.raises(ValueError, match="0 positives and 3 negatives"):
        auc([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(ValueError, match="empty"):
        rmse([], [])
    assert math.isclose(auc(np.arange(4.0), [0, 0, 1, 1]), 1.0)
