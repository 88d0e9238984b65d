"""Audit of the baselines on edge cases: the L2 weight's range."""

from __future__ import annotations

import pytest

from kgrec.baselines import EASE, UserEASE


@pytest.mark.parametrize("model", [EASE, UserEASE])
@pytest.mark.parametrize("reg", [float("inf"), float("nan"), 0.0, -1.0])
def test_a_non_finite_or_non_positive_l2_weight_is_refused_up_front(model, reg):
    # an infinite weight used to be accepted and solved into NaN weights (inf / inf), found
    # only later, as NaN scores
    with pytest.raises(ValueError, match="expected a positive, finite L2 weight"):
        model(reg)
