"""User x item interaction matrices in CSR form, and dense row gathers from them.

The evaluation masks (items to exclude, items that are relevant) and the baselines' user
rows all come from one representation: a binary ``torch.sparse_csr_tensor`` of shape
``(n_users, n_items)`` whose stored values are 1. Repeated (user, item) pairs count once.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from kgrec.data.dataset import Interactions

#: What the evaluation accepts as "a set of interactions": one part, several parts, a torch
#: sparse CSR tensor, or any object with scipy-style ``indptr`` / ``indices`` / ``shape``.
InteractionsLike = Interactions | Sequence[Interactions] | torch.Tensor | Any


def interaction_matrix(
    parts: Interactions | Sequence[Interactions], n_users: int, n_items: int
) -> torch.Tensor:
    """Binary user x item matrix of one or several interaction parts, as torch sparse CSR.

    .. math::
        X_{ui} = 1 \\text{ if } (u, i) \\text{ occurs in any part, else } 0

    Args:
        parts: an :class:`~kgrec.data.Interactions` or a sequence of them (e.g.
            ``[dataset.train, dataset.valid]``); their pairs are merged, duplicates count once.
        n_users: number of rows; every user index must be in ``[0, n_users)``.
        n_items: number of columns; every item index must be in ``[0, n_items)``.

    Returns:
        ``torch.sparse_csr_tensor`` of shape ``(n_users, n_items)``, float32 values all 1,
        column indices sorted within each row.

    Raises:
        ValueError: when an index is out of range or a size is negative.
    """
    if n_users < 0 or n_items < 0:
        raise ValueError(f"n_users={n_users}, n_items={n_items}: expected non-negative sizes")
    parts = [parts] if isinstance(parts, Interactions) else list(parts)
    empty = np.zeros(0, np.int64)
    user = np.concatenate([empty] + [np.asarray(p.user, dtype=np.int64) for p in parts])
    item = np.concatenate([empty] + [np.asarray(p.item, dtype=np.int64) for p in parts])
    for name, index, size in (("user", user, n_users), ("item", item, n_items)):
        if len(index) and (index.min() < 0 or index.max() >= size):
            raise ValueError(
                f"{name} index out of range [{index.min()}, {index.max()}]: expected indices in [0, {size})"
            )
    key = np.unique(user * max(n_items, 1) + item)  # sorted by (user, item), duplicates merged
    rows, cols = np.divmod(key, max(n_items, 1))
    crow = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=crow[1:])
    col = torch.from_numpy(cols.astype(np.int64))
    return _binary_csr(torch.from_numpy(crow), col, (n_users, n_items), check=False)


def as_csr(matrix: InteractionsLike, n_users: int | None = None, n_items: int | None = None) -> torch.Tensor:
    """Coerce interactions, a torch sparse CSR tensor or a scipy sparse matrix to torch sparse
    CSR (scipy's other formats, CSC and COO among them, are converted by their rows first).

    ``n_users`` and ``n_items`` are required for :class:`Interactions` input and checked
    against the shape of matrix input when given.
    """
    if isinstance(matrix, torch.Tensor):
        if matrix.layout != torch.sparse_csr:
            raise ValueError(f"matrix has layout {matrix.layout}: expected torch.sparse_csr or Interactions")
        csr = matrix
        keep = matrix.values() != 0
        if matrix.dim() == 2 and not bool(keep.all()):  # a stored zero is no interaction, as for scipy input
            crow = matrix.crow_indices()
            row = torch.repeat_interleave(torch.arange(matrix.shape[0], device=crow.device), crow.diff())
            crow = torch.cat([crow.new_zeros(1), torch.bincount(row[keep], minlength=matrix.shape[0]).cumsum(0)])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
                csr = torch.sparse_csr_tensor(
                    crow.to(matrix.crow_indices().dtype), matrix.col_indices()[keep], matrix.values()[keep],
                    tuple(matrix.shape), check_invariants=False,
                )
    elif hasattr(matrix, "tocsr") or (hasattr(matrix, "indptr") and hasattr(matrix, "indices")):  # scipy.sparse
        if hasattr(matrix, "tocsr"):  # CSC's indptr runs over columns: read as CSR, it would be transposed
            matrix = matrix.tocsr(copy=True)
        if hasattr(matrix, "eliminate_zeros"):  # canonical form on a copy: stored zeros are no interaction
            matrix.sum_duplicates()  # also sorts each row's columns, as torch requires
            matrix.eliminate_zeros()  # after summing: entries that cancel out are no interaction
        crow = torch.as_tensor(np.asarray(matrix.indptr, dtype=np.int64))
        col = torch.as_tensor(np.asarray(matrix.indices, dtype=np.int64))
        csr = _binary_csr(crow, col, tuple(matrix.shape), check=True)
    else:
        if n_users is None or n_items is None:
            raise ValueError("n_users and n_items are required to build a matrix from Interactions")
        return interaction_matrix(matrix, n_users, n_items)
    expected = (csr.shape[0] if n_users is None else n_users, csr.shape[1] if n_items is None else n_items)
    if tuple(csr.shape) != expected:
        raise ValueError(f"matrix has shape {tuple(csr.shape)}: expected {expected}")
    return csr


def _binary_csr(crow: torch.Tensor, col: torch.Tensor, shape: tuple[int, int], check: bool) -> torch.Tensor:
    """A float32 CSR tensor of ones; ``check`` validates the indices (foreign input)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(
            crow, col, torch.ones(len(col), dtype=torch.float32), size=shape, check_invariants=check
        )


def row_entries(csr: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stored entries of the given rows, without a Python loop.

    Args:
        csr: torch sparse CSR matrix ``(R, C)``.
        rows: ``(B,)`` int64 row indices (any order, repeats allowed).

    Returns:
        ``(batch_pos, col)``: for every stored entry of ``csr[rows[b]]``, the position ``b`` in
        the batch and its column; both ``(nnz_batch,)`` int64 on ``csr``'s device.
    """
    batch_pos, at = _row_positions(csr, rows)
    return batch_pos, csr.col_indices()[at]


def row_values(csr: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`row_entries` with the stored values: ``(batch_pos, col, value)``."""
    batch_pos, at = _row_positions(csr, rows)
    return batch_pos, csr.col_indices()[at], csr.values()[at]


def _row_positions(csr: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every stored entry of the given rows, its position in the batch and in ``csr``'s storage."""
    crow = csr.crow_indices()
    rows = rows.to(crow.device)
    start, length = crow[rows], crow[rows + 1] - crow[rows]  # (B,), (B,)
    batch_pos = torch.repeat_interleave(torch.arange(len(rows), device=crow.device), length)
    # position of each entry inside its row: 0, 1, ..., length-1 for every row in turn
    offset_in_row = torch.arange(len(batch_pos), device=crow.device) - torch.repeat_interleave(
        torch.cumsum(length, 0) - length, length
    )
    return batch_pos, torch.repeat_interleave(start, length) + offset_in_row


def dense_rows(
    csr: torch.Tensor,
    rows: torch.Tensor,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``csr[rows]`` as a dense ``(B, C)`` tensor of 0/1 (``bool`` dtype gives a mask)."""
    batch_pos, cols = row_entries(csr, rows)
    out = torch.zeros(len(rows), csr.shape[1], dtype=dtype, device=device)
    out[batch_pos.to(out.device), cols.to(out.device)] = 1
    return out


def sparse_rows(csr: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``csr[rows]`` as a sparse CSR ``(B, C)`` tensor with the stored values (ones for an
    :func:`interaction_matrix`): a product with a ``(C, d)`` matrix then costs ``nnz x d``,
    what the rows hold, not the ``B x C x d`` of :func:`dense_rows` (EASE's scores over a
    30k-item catalogue with 6 items per user: 5,000 times fewer multiplications)."""
    return entries_as_rows(*row_values(csr, rows), (len(rows), csr.shape[1]))


def entries_as_rows(
    batch_pos: torch.Tensor, cols: torch.Tensor, values: torch.Tensor | None, shape: tuple[int, int]
) -> torch.Tensor:
    """:func:`row_entries`'s output ``(batch_pos, cols)`` as a sparse CSR ``shape`` tensor, with
    ``values`` (``None``: ones), what :func:`sparse_rows` returns (for a caller that needs both)."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=cols.device)
    crow[1:] = torch.bincount(batch_pos, minlength=shape[0]).cumsum(0)
    values = torch.ones(len(cols), device=cols.device) if values is None else values.to(cols.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)


def recency_matrix(
    train: Interactions, n_users: int, n_items: int, hours: float, floor: float = 0.0
) -> torch.Tensor:
    """The training matrix with each entry weighted by how recent it is for its user, as torch
    sparse CSR with :func:`interaction_matrix`'s entries, in its order:

    .. math::
        W_{ui} = f + (1 - f) \\exp\\big(-(t_u^{\\max} - t_{ui}) / \\tau\\big),

    :math:`t_{ui}` the latest time of the pair, :math:`t_u^{\\max}` the user's latest training
    time, :math:`\\tau` = ``hours`` and :math:`f` = ``floor``: the user's last interactions weigh
    1 and older ones fade to :math:`f`. Only training timestamps are read (seconds).
    :func:`age_matrix` then :func:`recency_weights`; several decays can share one age matrix.
    """
    return recency_weights(age_matrix(train, n_users, n_items), hours, floor)


def age_matrix(train: Interactions, n_users: int, n_items: int) -> torch.Tensor:
    """:func:`interaction_matrix`'s entries, in its order, holding :math:`t_u^{\\max} - t_{ui}` in
    hours (float64): each pair's age at its user's latest training interaction."""
    if train.timestamp is None:
        raise ValueError("recency weights: the training interactions have no timestamps")
    binary = interaction_matrix(train, n_users, n_items)
    user, item = np.asarray(train.user, dtype=np.int64), np.asarray(train.item, dtype=np.int64)
    seconds = np.asarray(train.timestamp, dtype=np.float64)
    order = np.lexsort((seconds, item, user))  # by (user, item, time): each pair's latest comes last
    user, item, seconds = user[order], item[order], seconds[order]
    latest = np.r_[(user[1:] != user[:-1]) | (item[1:] != item[:-1]), True][: len(user)]  # none when no pair
    newest = np.full(n_users, -np.inf)
    np.maximum.at(newest, user, seconds)
    age_hours = (newest[user[latest]] - seconds[latest]) / 3600.0  # in (user, item) order, as binary's entries
    return _with_values(binary, torch.from_numpy(age_hours))


def recency_weights(ages: torch.Tensor, hours: float, floor: float = 0.0) -> torch.Tensor:
    """:func:`age_matrix`'s ``ages`` as :func:`recency_matrix`'s float32 weights
    :math:`f + (1 - f) \\exp(-\\text{age} / \\tau)`, the same entries."""
    if not hours > 0 or not 0 <= floor <= 1:
        raise ValueError(f"hours={hours}, floor={floor}: expected hours > 0 and 0 <= floor <= 1")
    return _with_values(ages, (floor + (1.0 - floor) * torch.exp(-ages.values() / hours)).float())


def _with_values(csr: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A CSR tensor with ``csr``'s entries and ``values``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values, csr.shape, check_invariants=False)


def is_stored(csr: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``(B, K)`` bool: whether ``csr[rows[b], cols[b, k]]`` is a stored entry, by binary search
    in the rows' sorted entries (no dense ``(B, C)`` mask).

    Args:
        csr: torch sparse CSR matrix ``(R, C)`` with sorted column indices in each row (as
            :func:`interaction_matrix` builds it).
        rows: ``(B,)`` int64 row indices.
        cols: ``(B, K)`` int64 column indices.
    """
    batch_pos, col = row_entries(csr, rows)  # sorted by (batch_pos, col)
    n_cols = csr.shape[1]
    stored = batch_pos * n_cols + col  # (nnz_batch,) ascending keys
    asked = torch.arange(len(rows)).unsqueeze(1) * n_cols + cols  # (B, K)
    if stored.numel() == 0:
        return torch.zeros(asked.shape, dtype=torch.bool)
    at = torch.searchsorted(stored, asked).clamp(max=stored.numel() - 1)
    return stored[at] == asked
