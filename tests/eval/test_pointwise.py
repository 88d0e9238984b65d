"""RMSE, MAE and AUC against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgrec.eval import auc, mae, rmse


def test_rmse_and_mae_by_hand():
    # errors: 1-1 = 0, 2-4 = -2, 3-0 = 3 -> MAE = (0+2+3)/3, RMSE = sqrt((0+4+9)/3)
    assert mae([1.0, 2.0, 3.0], [1.0, 4.0, 0.0]) == pytest.approx(5 / 3)
    assert rmse(torch.tensor([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 0.0])) == pytest.approx(math.sqrt(13 / 3))


def test_auc_by_hand():
    # positives {0.35, 0.8} vs negatives {0.1, 0.4}: 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auc_ties_count_one_half():
    # positive 0.5 vs negatives {0.2, 0.5, 0.5}: 1 + 1/2 + 1/2 = 2 of 3 pairs
    # ranks: 0.2 -> 1, the three 0.5 -> (2+3+4)/3 = 3; (3 - 1*2/2) / (1*3) = 2/3
    assert auc([0.2, 0.5, 0.5, 0.5], [0, 1, 0, 0]) == pytest.approx(2 / 3)
    assert auc([1.0, 1.0, 1.0, 1.0], [True, False, True, False]) == pytest.approx(0.5)


def test_auc_matches_pair_counting_on_random_data_with_ties():
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 5, 200).astype(float), rng.integers(0, 2, 200)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert auc(scores, labels) == pytest.approx(pairwise, abs=1e-12)


def test_auc_needs_both_classes_and_binary_labels():
    with pytest.raises(ValueError, match="needs both"):
        auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="0/1"):
        auc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="same number"):
        rmse([1.0], [1.0, 2.0])
