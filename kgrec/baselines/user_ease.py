"""User-based EASE: EASE's closed form over users instead of items."""

from __future__ import annotations

import torch

from kgrec.baselines.ease import blocked_gram, check_l2, closed_form
from kgrec.data.dataset import Interactions
from kgrec.eval.matrix import interaction_matrix

#: Most users :class:`UserEASE` is fitted for: its fit holds two ``(U, U)`` float64 matrices
#: (3.2 GB at 20k users) and its scores a ``(U, I)`` float32 table.
MAX_USER_EASE_USERS = 20_000

#: Most entries of one float64 block that :meth:`UserEASE.fit` holds beside its ``(U, U)``
#: matrices (128 MB): the users' rows are taken this many entries at a time.
BLOCK_ENTRIES = 2**24


class UserEASE:
    r"""Each user's row of the training matrix rebuilt from the other users' rows.

    EASE (:class:`~kgrec.baselines.EASE`) applied to :math:`X^\top`: with
    :math:`X \in \{0, 1\}^{U \times I}`,

    .. math::
        \min_C \; \|X^\top - X^\top C\|_F^2 + \lambda \|C\|_F^2
        \quad \text{s.t.} \quad \mathrm{diag}(C) = 0,

    solved by :math:`P = (X X^\top + \lambda I)^{-1}`, :math:`C_{vu} = -P_{vu} / P_{uu}`
    (:math:`v \ne u`), and user :math:`u`'s scores are :math:`s_u = \sum_v C_{vu} X_v` (the
    ``(U, I)`` table :math:`S = C^\top X`): the items of the users most like :math:`u`,
    weighted as a regression on them. It sees the
    data from the other side from item EASE (a neighbourhood of users, not of items), and
    the two blend well (``train.teacher_user_weight``). The scores of every user are computed
    at fit: :math:`O(U^2 + U I)` memory (two ``(U, U)`` float64 matrices while solving, then
    :math:`C` beside the ``(U, I)`` float32 table), :math:`O(U^3 + \mathrm{nnz}(X) \, U)` time,
    for up to :data:`MAX_USER_EASE_USERS` users. :math:`X` stays sparse: :math:`X X^\top` and
    :math:`C^\top X` are sparse-dense products over blocks of users, and no dense
    :math:`(U, I)` float64 copy of :math:`X` (4.8 GB at 20k users and 30k items) is made.

    Args:
        reg: the L2 weight :math:`\lambda` (tune it on valid over :attr:`REG_GRID`).
        device: where the fit runs and the scores stay.
    """

    REG_GRID: tuple[float, ...] = (50.0, 100.0, 250.0, 500.0, 1000.0)

    def __init__(self, reg: float = 250.0, device: torch.device | str = "cpu") -> None:
        check_l2(reg)
        self.reg = float(reg)
        self.device = torch.device(device)
        self.table: torch.Tensor | None = None  # (U, I) float32 scores of every user

    def fit(self, train: Interactions, n_users: int, n_items: int) -> UserEASE:
        """Build :math:`X` from ``train`` and compute every user's scores on :attr:`device`."""
        if n_users > MAX_USER_EASE_USERS:
            raise ValueError(f"UserEASE: {n_users} users, at most {MAX_USER_EASE_USERS} are supported (O(U^2) memory)")
        x = interaction_matrix(train, n_users, n_items)  # (U, I) sparse CSR of ones, on the CPU
        step = max(1, BLOCK_ENTRIES // max(n_users, n_items, 1))  # users per block

        c = closed_form(lambda: blocked_gram(x, step, self.device), self.reg)  # (U, U): C_vu = -P_vu / P_uu, zero diagonal
        xt = x.to_sparse_coo().t().coalesce().to_sparse_csr().to(device=self.device, dtype=torch.float64)  # (I, U)
        table = torch.empty(n_users, n_items, dtype=torch.float32, device=self.device)
        for start in range(0, n_users, step):  # S_b = (X^T C_{:, b})^T: s_u = sum_v C_vu X_v, in float64
            table[start : start + step] = torch.sparse.mm(xt, c[:, start : start + step]).T
        self.table = table
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``(B,)`` users -> ``(B, n_items)`` scores."""
        if self.table is None:
            raise RuntimeError("UserEASE.score called before fit")
        return self.table[users.to(self.table.device)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reg={self.reg:g})"
