"""User + item biases audit: the fit against a closed-form regularised least squares, users and
items without training ratings fall back to the mean, indices outside the fit are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.baselines import BiasBaseline
from kgrec.data import Interactions


def _train(seed: int, n_users: int, n_items: int, n: int) -> Interactions:
    rng = np.random.default_rng(seed)
    key = rng.choice(n_users * n_items, n, replace=False)
    return Interactions(user=(key // n_items).astype(np.int64), item=(key % n_items).astype(np.int64),
                        rating=rng.integers(1, 6, n).astype(np.float32))  # fmt: skip


def _ridge(train: Interactions, n_users: int, n_items: int, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """argmin_b sum (r - mu - b_u - b_i)^2 + reg |b|^2 by the normal equations (X'X + reg I) b = X'(r - mu)."""
    x = np.zeros((len(train), n_users + n_items))
    x[np.arange(len(train)), train.user] = 1.0
    x[np.arange(len(train)), n_users + train.item] = 1.0
    r = train.rating.astype(np.float64)  # type: ignore[union-attr]
    b = np.linalg.solve(x.T @ x + reg * np.eye(n_users + n_items), x.T @ (r - r.mean()))
    return b[:n_users], b[n_users:]


@pytest.mark.parametrize("reg", [0.5, 3.0, 25.0])
def test_the_rounds_converge_to_the_closed_form_least_squares_fit(reg):
    train = _train(3, 7, 5, 20)  # user 6 or item 4 may have no rating: both solutions give them 0
    model = BiasBaseline(reg=reg, rounds=2000).fit(train, n_users=7, n_items=5)
    user_bias, item_bias = _ridge(train, 7, 5, reg)
    np.testing.assert_allclose(model.user_bias, user_bias, atol=1e-9)
    np.testing.assert_allclose(model.item_bias, item_bias, atol=1e-9)


def test_users_and_items_without_training_ratings_get_the_mean():
    train = Interactions(user=np.array([0, 0, 1]), item=np.array([0, 1, 1]), rating=np.array([5, 3, 4], np.float32))
    model = BiasBaseline(reg=1.0).fit(train, n_users=3, n_items=3)  # user 2 and item 2 have no rating
    assert model.predict(np.array([2]), np.array([2])).tolist() == [4.0]
    assert model.score(torch.tensor([2]))[0, 2].item() == pytest.approx(4.0)


@pytest.mark.parametrize(("users", "items"), [([-1], [0]), ([0], [-1]), ([3], [0]), ([0], [3])])
def test_an_index_outside_the_fit_is_refused_not_wrapped(users, items):
    train = Interactions(user=np.array([0, 1, 2]), item=np.array([0, 1, 2]), rating=np.array([1, 3, 5], np.float32))
    model = BiasBaseline(reg=0.0).fit(train, n_users=3, n_items=3)
    with pytest.raises(ValueError, match="index out of range"):
        model.predict(np.array(users), np.array(items))  # -1 read user 2's bias: 5 instead of an error
    if users[0] != 0:
        with pytest.raises(ValueError, match="index out of range"):
            model.score(torch.tensor(users))
    assert model.predict(np.array([], np.int64), np.array([], np.int64)).shape == (0,)
