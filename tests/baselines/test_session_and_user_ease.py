"""Session-weighted EASE's Gram matrix and user-based EASE against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgrec.baselines import EASE, UserEASE
from kgrec.baselines.ease import session_gram
from kgrec.data import Interactions


def test_session_gram_weighs_each_pair_by_its_time_apart():
    hour = 3600.0
    train = Interactions(
        user=np.array([0, 0, 0, 1, 1, 1, 0]),
        item=np.array([0, 1, 2, 0, 2, 1, 1]),  # user 0 meets item 1 twice: its first time counts
        timestamp=np.array([0.0, 1 * hour, 3 * hour, 10 * hour, 10 * hour, 12 * hour, 50 * hour]),
    )
    gram = session_gram(train, n_items=4, hours=2.0)
    w = lambda hours_apart: math.exp(-hours_apart / 2.0)  # noqa: E731
    expected = torch.tensor([
        [2, w(1) + w(2), w(3) + w(0), 0],
        [w(1) + w(2), 2, w(2) + w(2), 0],
        [w(3) + w(0), w(2) + w(2), 2, 0],
        [0, 0, 0, 0],
    ], dtype=torch.float64)  # fmt: skip
    torch.testing.assert_close(gram, expected)
    # with no decay it is X^T X, which EASE uses without session_hours
    x = torch.zeros(2, 4, dtype=torch.float64)
    x[train.user, train.item] = 1
    torch.testing.assert_close(session_gram(train, 4, hours=1e12), x.T @ x)
    plain, weighted = EASE(1.0).fit(train, 2, 4), EASE(1.0, session_hours=1e12).fit(train, 2, 4)
    torch.testing.assert_close(weighted.weight, plain.weight)
    assert not torch.allclose(EASE(1.0, session_hours=2.0).fit(train, 2, 4).weight, plain.weight)


def test_session_weighting_needs_timestamps_and_positive_hours():
    with pytest.raises(ValueError, match="no timestamps"):
        EASE(1.0, session_hours=1.0).fit(Interactions(user=np.array([0]), item=np.array([0])), 1, 1)
    with pytest.raises(ValueError, match="positive number of hours"):
        EASE(1.0, session_hours=0.0)


def test_user_ease_is_a_ridge_regression_of_each_user_on_the_others():
    rng = np.random.default_rng(0)
    x = (rng.random((7, 9)) < 0.4).astype(np.float64)
    users, items = np.nonzero(x)
    reg = 1.5
    model = UserEASE(reg).fit(Interactions(user=users, item=items), n_users=7, n_items=9)
    for u in range(7):
        others = np.delete(np.arange(7), u)
        a = x[others]  # (U-1, I): the other users' rows as regressors of user u's row
        c = np.linalg.solve(a @ a.T + reg * np.eye(6), a @ x[u])  # argmin ||x_u - c a||^2 + reg ||c||^2
        np.testing.assert_allclose(model.score(torch.tensor([u]))[0].numpy(), c @ a, atol=1e-5)


def test_user_ease_refuses_more_users_than_it_can_hold(monkeypatch):
    import kgrec.baselines.user_ease as user_ease

    monkeypatch.setattr(user_ease, "MAX_USER_EASE_USERS", 2)
    with pytest.raises(ValueError, match="3 users, at most 2"):
        UserEASE().fit(Interactions(user=np.array([0, 1, 2]), item=np.array([0, 0, 0])), 3, 1)


def test_recency_weighted_ease_scores_the_weighted_history_with_the_same_weights():
    from kgrec.eval.matrix import recency_matrix

    rng = np.random.default_rng(0)
    train = Interactions(user=rng.integers(0, 6, 60), item=rng.integers(0, 9, 60), timestamp=rng.random(60) * 48 * 3600.0)
    plain = EASE(2.0).fit(train, 6, 9)
    recent = EASE(2.0, recency_hours=3.0, recency_floor=0.1).fit(train, 6, 9)
    torch.testing.assert_close(recent.weight, plain.weight)  # the same item-item weights ...
    users = torch.tensor([4, 0, 4])
    history = recency_matrix(train, 6, 9, hours=3.0, floor=0.1).to_dense()
    torch.testing.assert_close(recent.score(users), history[users] @ plain.weight)  # ... from W_u, not X_u
    assert not torch.allclose(recent.score(users), plain.score(users))
    whole = EASE(2.0, recency_hours=3.0, recency_floor=1.0).fit(train, 6, 9)  # nothing fades: plain EASE
    torch.testing.assert_close(whole.score(users), plain.score(users))
    assert "recency_hours=3" in repr(recent)
    for bad in ({"recency_hours": 0.0}, {"recency_floor": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            EASE(2.0, **bad)


def test_recency_weighted_ease_ranks_what_follows_the_users_last_item():
    # two chains of items, 0 -> 1 and 2 -> 3, co-occur in other users' histories; user 0 met item 0
    # long ago and item 2 just now, so with recency item 3 (follows 2) outranks item 1 (follows 0)
    hour = 3600.0
    pairs = [(u, (0, 1) if u % 2 else (2, 3)) for u in range(1, 9)]
    user = np.array([0, 0] + [u for u, items in pairs for _ in items])
    item = np.array([0, 2] + [i for _, items in pairs for i in items])
    stamp = np.array([0.0, 100 * hour] + [0.0] * (len(user) - 2))
    train = Interactions(user=user, item=item, timestamp=stamp)
    plain = EASE(1.0).fit(train, 9, 4).score(torch.tensor([0]))[0]
    recent = EASE(1.0, recency_hours=1.0).fit(train, 9, 4).score(torch.tensor([0]))[0]
    torch.testing.assert_close(plain[1], plain[3])  # without recency the two are alike
    assert recent[3] > recent[1] + 0.1
