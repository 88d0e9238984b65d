"""Interaction matrices: CSR layout, duplicates merged, row gathers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.data import Interactions
from kgrec.eval import dense_rows, interaction_matrix


def test_interaction_matrix_merges_parts_and_duplicates():
    a = Interactions(user=np.array([0, 0, 2]), item=np.array([3, 1, 0]))
    b = Interactions(user=np.array([0, 2]), item=np.array([3, 2]))  # (0, 3) again
    m = interaction_matrix([a, b], n_users=3, n_items=4)
    assert m.layout == torch.sparse_csr
    assert m.to_dense().tolist() == [[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0]]


def test_dense_rows_follows_the_requested_order_and_repeats():
    m = interaction_matrix(Interactions(user=np.array([0, 2]), item=np.array([1, 0])), 3, 2)
    rows = dense_rows(m, torch.tensor([2, 1, 0, 2]), torch.bool)
    assert rows.tolist() == [[True, False], [False, False], [False, True], [True, False]]


def test_sparse_rows_are_the_dense_rows_in_csr_form():
    from kgrec.eval.matrix import sparse_rows

    m = interaction_matrix(Interactions(user=np.array([0, 0, 2, 3]), item=np.array([1, 3, 0, 3])), 4, 4)
    rows = torch.tensor([2, 1, 0, 2, 3])  # any order, an empty row, a repeat
    csr = sparse_rows(m, rows)
    assert csr.layout == torch.sparse_csr and csr.shape == (5, 4)
    assert torch.equal(csr.to_dense(), dense_rows(m, rows))
    weight = torch.randn(4, 3)
    torch.testing.assert_close(torch.sparse.mm(csr, weight), dense_rows(m, rows) @ weight)


def test_is_stored_looks_up_entries_without_a_dense_mask():
    from kgrec.eval.matrix import is_stored

    m = interaction_matrix(Interactions(user=np.array([0, 0, 2, 3]), item=np.array([1, 3, 0, 3])), 4, 4)
    rows = torch.tensor([2, 1, 0, 3])  # any order, an empty row
    cols = torch.tensor([[0, 3], [1, 0], [3, 1], [2, 3]])
    expected = dense_rows(m, rows, torch.bool).gather(1, cols)
    assert torch.equal(is_stored(m, rows, cols), expected)
    assert expected.tolist() == [[True, False], [False, False], [True, True], [False, True]]
    empty = interaction_matrix(Interactions(user=np.array([], dtype=np.int64), item=np.array([], dtype=np.int64)), 2, 3)
    assert not is_stored(empty, torch.tensor([0, 1]), torch.tensor([[0], [2]])).any()


def test_out_of_range_index_is_refused():
    with pytest.raises(ValueError, match="item index out of range"):
        interaction_matrix(Interactions(user=np.array([0]), item=np.array([5])), 1, 5)


def test_scipy_input_with_unsorted_columns_and_stored_zeros():
    sparse = pytest.importorskip("scipy.sparse")
    from kgrec.eval.matrix import as_csr

    m = sparse.csr_matrix((np.array([1.0, 0.0, 1.0]), np.array([2, 1, 0]), np.array([0, 3, 3])), shape=(2, 3))
    assert as_csr(m).to_dense().tolist() == [[1, 0, 1], [0, 0, 0]]  # the stored zero at (0, 1) is no interaction
    assert m.nnz == 3  # the caller's matrix is left as it was


def test_scipy_entries_that_cancel_out_are_no_interaction():
    sparse = pytest.importorskip("scipy.sparse")
    from kgrec.eval.matrix import as_csr

    m = sparse.csr_matrix((np.array([1.0, -1.0, 1.0]), np.array([0, 0, 1]), np.array([0, 3])), shape=(1, 2))
    assert as_csr(m).to_dense().tolist() == [[0, 1]]


def test_recency_matrix_weighs_each_users_items_by_their_age_at_the_users_last_one():
    from kgrec.eval.matrix import recency_matrix, row_values

    hour = 3600.0
    train = Interactions(
        user=np.array([0, 0, 0, 1, 1, 0]),
        item=np.array([2, 0, 1, 3, 0, 0]),  # user 0 meets item 0 twice: its latest time counts
        timestamp=np.array([5 * hour, 0.0, 4 * hour, 7 * hour, 9 * hour, 2 * hour]),
    )
    weights = recency_matrix(train, n_users=3, n_items=4, hours=2.0, floor=0.2)
    binary = interaction_matrix(train, 3, 4)
    assert torch.equal(weights.crow_indices(), binary.crow_indices()) and torch.equal(weights.col_indices(), binary.col_indices())
    w = lambda age: 0.2 + 0.8 * np.exp(-age / 2.0)  # noqa: E731
    expected = torch.tensor([[w(3), w(1), w(0), 0], [w(0), 0, 0, w(2)], [0, 0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(weights.to_dense(), expected)
    batch, col, value = row_values(weights, torch.tensor([1, 0]))
    assert batch.tolist() == [0, 0, 1, 1, 1] and col.tolist() == [0, 3, 0, 1, 2]
    torch.testing.assert_close(value, expected[[1, 1, 0, 0, 0], [0, 3, 0, 1, 2]])
    with pytest.raises(ValueError, match="no timestamps"):
        recency_matrix(Interactions(user=train.user, item=train.item), 3, 4, hours=1.0)
