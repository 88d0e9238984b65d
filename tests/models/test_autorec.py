from __future__ import annotations

import pytest
import torch

from kgrec.models import ItemAutoRec, rating_matrix
from kgrec.models._sparse import SparseOperator

USERS = torch.tensor([0, 0, 1, 2, 2, 3])
ITEMS = torch.tensor([0, 1, 1, 0, 2, 1])
RATINGS = torch.tensor([5.0, 3.0, 4.0, 1.0, 2.0, 5.0])


def item_rows(users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor, n_users: int = 4, n_items: int = 4):
    return SparseOperator.from_sparse(rating_matrix(users, items, ratings, n_users, n_items).t())


def test_rating_matrix_keeps_the_mean_of_a_pair_rated_twice() -> None:
    dense = rating_matrix(torch.tensor([0, 0, 1]), torch.tensor([2, 2, 0]), torch.tensor([2.0, 4.0, 5.0]), 2, 3)
    assert torch.equal(dense.to_dense(), torch.tensor([[0.0, 0.0, 3.0], [5.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="equal 1-d shapes"):
        rating_matrix(torch.tensor([0]), torch.tensor([0, 1]), torch.tensor([1.0]), 2, 2)


def test_leave_out_equals_removing_the_pair_from_the_input() -> None:
    autorec = ItemAutoRec(num_users=4, units=6, init_std=0.5)
    full = item_rows(USERS, ITEMS, RATINGS)
    for k in range(len(USERS)):
        keep = torch.arange(len(USERS)) != k
        without = item_rows(USERS[keep], ITEMS[keep], RATINGS[keep])
        u, i = USERS[k : k + 1], ITEMS[k : k + 1]
        left_out = autorec(full, u, i, leave_out=True)
        torch.testing.assert_close(left_out, autorec(without, u, i))
        assert not torch.allclose(left_out, autorec(full, u, i))  # the target did move the full input


def test_leave_out_removes_the_whole_entry_of_a_pair_rated_twice() -> None:
    # user 0 rated item 2 twice (2 and 4): the matrix holds their mean, and leaving the pair out
    # must remove that mean, whichever of the two ratings the training row carries
    autorec = ItemAutoRec(num_users=4, units=6, init_std=0.5)
    users, items = torch.cat([USERS, torch.tensor([0, 0])]), torch.cat([ITEMS, torch.tensor([2, 2])])
    twice = item_rows(users, items, torch.cat([RATINGS, torch.tensor([2.0, 4.0])]))
    u, i = torch.tensor([0, 0]), torch.tensor([2, 2])
    torch.testing.assert_close(autorec(twice, u, i, leave_out=True), autorec(item_rows(USERS, ITEMS, RATINGS), u, i))


def test_formula_and_items_without_ratings() -> None:
    autorec = ItemAutoRec(num_users=4, units=3, init_std=0.5)
    torch.nn.init.normal_(autorec.encoder_bias)
    full = item_rows(USERS, ITEMS, RATINGS)
    r = rating_matrix(USERS, ITEMS, RATINGS, 4, 4).to_dense()  # (U, I)
    users, items = torch.tensor([3, 1, 0, 2]), torch.tensor([0, 2, 3, 3])
    hidden = torch.sigmoid(r.T @ autorec.encoder + autorec.encoder_bias)  # (I, h)
    expected = (autorec.decoder[users] * (hidden[items] - torch.sigmoid(autorec.encoder_bias))).sum(-1)
    torch.testing.assert_close(autorec(full, users, items), expected)
    # item 3 has no training ratings: the term has nothing to say about it
    assert torch.equal(autorec(full, users[2:], items[2:]), torch.zeros(2))
    assert (autorec(full, users[:2], items[:2]) != 0).all()


def test_gradients_are_finite_and_reach_every_parameter() -> None:
    autorec = ItemAutoRec(num_users=4, units=5)
    out = autorec(item_rows(USERS, ITEMS, RATINGS), USERS, ITEMS, leave_out=True)
    ((out - RATINGS) ** 2).mean().backward()
    for name, p in autorec.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_wrong_ratings_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected shape \(I, 5\)"):
        ItemAutoRec(num_users=5, units=2)(item_rows(USERS, ITEMS, RATINGS), USERS, ITEMS)
