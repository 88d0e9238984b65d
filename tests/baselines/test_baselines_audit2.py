"""Second audit of the baselines: user EASE's memory and blocks, and what tuning on valid refuses
before it fits anything, accepts as a grid, and says about the grid's ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.baselines import EASE, UserEASE, tune_on_valid
from kgrec.data import Dataset, Interactions
from tests.baselines.test_baselines import peak_of_fit


def _dataset(valid_users: list[int], valid_items: list[int]) -> Dataset:
    """Four users and six items; every user has training items, item 5 has none."""
    train = Interactions(user=np.array([0, 0, 1, 1, 2, 2, 3, 3]), item=np.array([0, 1, 1, 2, 2, 3, 3, 0]))
    return Dataset(
        name="tiny",
        path=None,  # type: ignore[arg-type]
        users=np.array([f"u{i}" for i in range(4)], dtype=object),
        items=np.array([f"i{i}" for i in range(6)], dtype=object),
        train=train,
        valid=Interactions(user=np.array(valid_users), item=np.array(valid_items)),
        test=Interactions(user=np.array([0]), item=np.array([4])),
        split="given",
    )


class _Scripted:
    """Ranks the valid items first when ``value == good``, last otherwise (NDCG 1 or 0)."""

    def __init__(self, value: float, good: float, valid: Interactions, n_items: int) -> None:
        self.sign = 1.0 if value == good else -1.0
        self.relevant = torch.zeros(4, n_items)
        self.relevant[valid.user, valid.item] = 1.0

    def fit(self, train: Interactions, n_users: int, n_items: int) -> _Scripted:
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.sign * self.relevant[users]


def test_user_ease_scores_do_not_depend_on_the_block_size(monkeypatch):
    # the Gram matrix and the scores are built a block of users at a time; uneven blocks
    # (3 users then 2) must give the closed form, zeros for a user with no training item and
    # for an item no user has
    import kgrec.baselines.user_ease as user_ease

    x = np.array([[1, 0, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [1, 0, 0, 1, 0]], float)
    users, items = np.nonzero(x)
    reg = 0.7
    p = np.linalg.inv(x @ x.T + reg * np.eye(5))
    c = -p / np.diag(p)  # C_vu = -P_vu / P_uu
    np.fill_diagonal(c, 0.0)
    expected = c.T @ x  # s_u = sum_v C_vu X_v
    monkeypatch.setattr(user_ease, "BLOCK_ENTRIES", 15)  # 15 // max(5 users, 5 items) = 3 users per block
    scores = UserEASE(reg).fit(Interactions(user=users, item=items), n_users=5, n_items=5).score(torch.arange(5))
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-6)
    assert torch.all(scores[2] == 0) and torch.all(scores[:, 4] == 0)


def test_user_ease_fit_never_holds_a_dense_float64_copy_of_the_training_matrix(tmp_path):
    # It used to densify X (U x I float64, 4.8 GB at 20k users and 30k items) and form C^T X in
    # float64 beside it: about three U x I float64 matrices, where the stated budget (two U x U
    # float64 while solving, then the U x I float32 table) is a fraction of one here.
    setup = "import kgrec.baselines.user_ease as user_ease\nuser_ease.BLOCK_ENTRIES = 2**18"
    peak = peak_of_fit(tmp_path, setup, "user_ease.UserEASE(10.0)", 1500, 6000, 30000, 1500 * 6000)
    assert peak < 1.4, f"peak of the fit: {peak:.2f} float64 (U, I) matrices"


@pytest.mark.parametrize("metric", ["gini@10", "popularity@10", "n_users", "ndcg@5"])
def test_tune_on_valid_refuses_a_metric_that_is_not_accuracy_at_its_ks_before_fitting(metric):
    # gini@10 and popularity@10 were maximised (lower is better for them), n_users chose the
    # first value; ndcg@5 was refused only after a first fit (minutes on a large catalogue)
    built: list[float] = []
    ds = _dataset([0, 1], [2, 3])
    with pytest.raises(ValueError, match=f"metric '{metric}': expected an accuracy metric"):
        tune_on_valid(ds, lambda value: built.append(value) or EASE(value), (1.0, 10.0), metric=metric)
    assert built == []


def test_tune_on_valid_refuses_a_valid_part_of_unknown_users_before_fitting():
    built: list[float] = []
    ds = _dataset([0], [2])
    ds.train = ds.train.select(ds.train.user != 0)  # user 0, the only one in valid, has no training item
    with pytest.raises(ValueError, match="valid part has no interactions"):
        tune_on_valid(ds, lambda value: built.append(value) or EASE(value), (1.0, 10.0), "ndcg@5", ks=(5,))
    assert built == []


def test_tune_on_valid_accepts_a_numpy_grid():
    # `not grid` of an array of two or more values raised numpy's "truth value ... is ambiguous"
    ds = _dataset([0, 1, 2], [2, 3, 4])
    grid = np.array([1.0, 2.0, 3.0])
    result = tune_on_valid(ds, lambda value: _Scripted(value, 2.0, ds.valid, ds.n_items), grid, ks=(5,), metric="ndcg@5")
    assert result.best == 2.0 and list(result.valid) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("grid", "good", "at_edge"),
    [
        ((1.0, 2.0, 3.0), 2.0, False),
        ((1.0, 2.0, 3.0), 3.0, True),
        ((1.0, 2.0, 3.0), 1.0, True),
        ((3.0, 1.0, 2.0), 3.0, True),  # the largest value, though not the last tried
        ((3.0, 1.0, 2.0), 2.0, False),  # the last tried, though inside the range
        ((2.0,), 2.0, False),  # nothing was chosen between values
    ],
)
def test_tune_result_says_when_the_chosen_value_is_an_end_of_the_grid(grid, good, at_edge):
    ds = _dataset([0, 1, 2], [2, 3, 4])
    result = tune_on_valid(ds, lambda value: _Scripted(value, good, ds.valid, ds.n_items), grid, ks=(5,), metric="ndcg@5")
    assert result.best == good
    assert result.at_edge is at_edge
