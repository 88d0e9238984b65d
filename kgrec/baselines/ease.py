"""EASE: Embarrassingly Shallow Autoencoder (Steck, "Embarrassingly Shallow Autoencoders for
Sparse Data", WWW 2019), an item-item linear model with a closed-form solution."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from kgrec.data.dataset import Interactions
from kgrec.eval.matrix import interaction_matrix, recency_matrix, row_entries, sparse_rows


class EASE:
    """Item-item weights learnt in closed form from the binary training matrix.

    With :math:`X \\in \\{0, 1\\}^{U \\times I}` the training interactions, EASE solves

    .. math::
        \\min_B \\; \\|X - X B\\|_F^2 + \\lambda \\|B\\|_F^2
        \\quad \\text{s.t.} \\quad \\mathrm{diag}(B) = 0

    whose solution is

    .. math::
        P = (X^\\top X + \\lambda I)^{-1}, \\qquad
        B = I - P \\, \\mathrm{diagMat}(1 / \\mathrm{diag}(P)),
        \\text{ i.e. } B_{ij} = -P_{ij} / P_{jj} \\; (i \\ne j), \\; B_{jj} = 0,

    and a user's scores are :math:`s_u = X_u B`. The Gram matrix is a sparse product (its cost
    follows the interactions, not :math:`U I^2`) and is inverted in float64 through its
    Cholesky factor (it is symmetric positive definite for :math:`\\lambda > 0`); memory is
    :math:`O(I^2)` and time :math:`O(I^3)`, so EASE suits catalogues up to some tens of
    thousands of items (15k items: about a minute per fit on 2 CPU cores).

    With ``session_hours`` :math:`\\tau` (session-weighted EASE) the Gram matrix counts a pair
    of items by how close in time the user interacted with them,

    .. math::
        G_{ij} = \\sum_u X_{ui} X_{uj} \\exp(-|t_{ui} - t_{uj}| / \\tau),

    in place of :math:`X^\\top X` (whose entries are the same sum without the decay; the
    diagonals agree): items rated in one sitting are close in a way that items rated years
    apart are not. Scores stay :math:`s_u = X_u B` (no timestamps are read when scoring).

    With ``recency_hours`` :math:`\\tau_r` (a recency-weighted history) the weights stay the
    same and a user's scores weigh each of their training items by how recent it is,
    :math:`s_u = W_u B` with :math:`W_{ui} = f + (1 - f) \\exp(-(t_u^{\\max} - t_{ui}) / \\tau_r)`
    (:func:`~kgrec.eval.matrix.recency_matrix`, :math:`f` = ``recency_floor``): what the user
    did last says most about what they do next. That is what a time-ordered split asks (the next
    items after the training ones); on a per-user random split, where the held-out items are
    spread over the user's whole history, valid prefers it off.

    Args:
        reg: the L2 weight :math:`\\lambda` (default 250; tune it on valid with
            :func:`kgrec.baselines.tune_on_valid` over :attr:`REG_GRID`).
        device: where the fit runs and the weights stay (a GPU solves 30k items in seconds,
            where 2 CPU cores take about 9 minutes); the training matrix stays on the CPU.
        session_hours: the decay :math:`\\tau` in hours of the session-weighted Gram matrix
            (the training interactions must have timestamps, in seconds); ``None``: :math:`X^\\top X`.
        recency_hours: the decay :math:`\\tau_r` in hours of the recency-weighted history
            (timestamps needed); ``None``: :math:`s_u = X_u B`.
        recency_floor: the weight :math:`f` that old items fade to (0: only the last ones count;
            0.05, the default, is what valid chose on ml-100k's leave-last-out split).
    """

    #: search space of ``reg`` for :func:`~kgrec.baselines.tune_on_valid`. MovieLens and
    #: Book-Crossing choose 100–500; sparse news clicks (MIND) want heavier shrinkage.
    REG_GRID: tuple[float, ...] = (50.0, 100.0, 250.0, 500.0, 1000.0, 3000.0, 10000.0)

    def __init__(
        self,
        reg: float = 250.0,
        device: torch.device | str = "cpu",
        session_hours: float | None = None,
        recency_hours: float | None = None,
        recency_floor: float = 0.05,
    ) -> None:
        check_l2(reg)
        for name, hours in (("session_hours", session_hours), ("recency_hours", recency_hours)):
            if hours is not None and not hours > 0:
                raise ValueError(f"{name}={hours}: expected a positive number of hours (or None)")
        if not 0 <= recency_floor <= 1:
            raise ValueError(f"recency_floor={recency_floor}: expected a weight in [0, 1]")
        self.reg = float(reg)
        self.device = torch.device(device)
        self.session_hours = session_hours
        self.recency_hours = recency_hours
        self.recency_floor = float(recency_floor)
        self.weight: torch.Tensor | None = None  # (I, I) float32, zero diagonal, on fit's device
        self.history: torch.Tensor | None = None  # (U, I) sparse CSR: X, or W with recency_hours

    def fit(self, train: Interactions, n_users: int, n_items: int) -> EASE:
        """Build :math:`X` from ``train`` and solve for :math:`B` on :attr:`device`."""
        x = interaction_matrix(train, n_users, n_items)
        p = closed_form(lambda: self._gram(train, x, n_items), self.reg)
        # Row-major: LAPACK's inverse comes back column-major, and a sparse (CSR) product with a
        # column-major matrix copies it first (0.9 GB, about 0.9 s per call at 15k items). One
        # copy does both the cast and the layout (.float().contiguous() would make two).
        self.weight = p.to(torch.float32, memory_format=torch.contiguous_format)
        recency = self.recency_hours
        self.history = x if recency is None else recency_matrix(train, n_users, n_items, recency, self.recency_floor)
        return self

    def _gram(self, train: Interactions, x: torch.Tensor, n_items: int) -> torch.Tensor:
        """``(I, I)`` float64 on :attr:`device`: :math:`X^\\top X`, or the session-weighted Gram matrix."""
        if self.session_hours is not None:
            return session_gram(train, n_items, self.session_hours, self.device)
        return item_cooccurrence(x, self.device)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``(B,)`` users -> ``(B, n_items)`` scores :math:`X_u B` (:math:`W_u B` with ``recency_hours``)."""
        if self.weight is None or self.history is None:
            raise RuntimeError("EASE.score called before fit")
        rows = sparse_rows(self.history, users).to(self.weight.device)
        return torch.sparse.mm(rows, self.weight)  # (B, I) @ (I, I), cost follows X_u

    def __repr__(self) -> str:
        session = "" if self.session_hours is None else f", session_hours={self.session_hours:g}"
        recency = "" if self.recency_hours is None else f", recency_hours={self.recency_hours:g}, recency_floor={self.recency_floor:g}"
        return f"{type(self).__name__}(reg={self.reg:g}{session}{recency})"


#: Entries of one dense block in :func:`blocked_gram`, at most: a quarter of the ``(n, n)``
#: result, or this many (128 MB of float64) where that is too small to matter.
GRAM_BLOCK_ENTRIES = 1 << 24
#: A sparse :math:`X^\top X` of up to this many bytes is made in one product whatever the
#: density (ml-100k: 68 MB at most), the quicker way.
GRAM_SPARSE_BYTES = 1 << 28


def item_cooccurrence(x: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    r""":math:`X^\top X`, ``(I, I)`` float64 on ``device``, from the ``(U, I)`` 0/1 sparse CSR
    training matrix, in at most about two ``(I, I)`` float64 matrices of memory.

    A sparse product keeps each nonzero :math:`(i, j)` as a sparse entry (about 24 bytes, three
    times a dense one), and its work follows :math:`\sum_u n_u^2`. When those pairs could fill
    more than a third of the matrix (nearly every pair of items co-occurs on MovieLens: 61% on
    ml-100k) and more than :data:`GRAM_SPARSE_BYTES`, the product and its dense copy took 4-5
    matrices, past the two the memory check counts; then :func:`blocked_gram` makes it a block
    of columns at a time. Counts are whole numbers, so both ways give the same, exact matrix."""
    n_users, n_items = x.shape
    pairs = float((x.crow_indices().diff().double() ** 2).sum())  # sum_u n_u^2
    coo = x.to_sparse_coo()
    if 24 * min(pairs, n_items**2) <= max(8 * n_items**2, GRAM_SPARSE_BYTES):  # at most one dense matrix's bytes
        coo = coo.to(device=device, dtype=torch.float64)
        return torch.sparse.mm(coo.t().coalesce(), coo).to_dense()
    step = max(1, min(n_items, max(GRAM_BLOCK_ENTRIES, n_items**2 // 4) // max(n_users, 1)))
    return blocked_gram(coo.t().coalesce().to_sparse_csr(), step, device)  # (I, U): M = X^T


def blocked_gram(m: torch.Tensor, step: int, device: torch.device | str = "cpu") -> torch.Tensor:
    r""":math:`M M^\top`, ``(n, n)`` float64 on ``device``, of the ``(n, k)`` 0/1 sparse CSR
    ``m``, ``step`` columns at a time: :math:`G_{:, b} = M \, (M_b)^\top`, the sparse matrix
    times a dense ``(k, step)`` block (integer counts: exact). The block and the product go
    through two buffers made once (a new pair for every block had piled up in the process's
    memory). :class:`EASE` takes :math:`X^\top X` this way (``m`` = :math:`X^\top`),
    :class:`~kgrec.baselines.user_ease.UserEASE` :math:`X X^\top` (``m`` = :math:`X`)."""
    n, k = m.shape
    m64 = m.to(device=device, dtype=torch.float64)
    gram = torch.empty(n, n, dtype=torch.float64, device=device)
    block = torch.zeros(k, step, dtype=torch.float64, device=device)  # (M_b)^T
    product = torch.empty(n, step, dtype=torch.float64, device=device)
    for start in range(0, n, step):
        stop = min(start + step, n)
        at, cols = row_entries(m, torch.arange(start, stop))
        block.zero_()
        block[cols.to(block.device), at.to(block.device)] = 1.0
        torch.mm(m64, block, out=product)
        gram[:, start:stop] = product[:, : stop - start]
    return gram


def check_l2(reg: float) -> None:
    """Refuse an L2 weight the closed form cannot use: 0 or less (a singular system), NaN, or inf
    (which solves into NaN weights, inf / inf)."""
    if not 0 < reg < float("inf"):
        raise ValueError(f"reg={reg}: expected a positive, finite L2 weight")


def closed_form(gram: Callable[[], torch.Tensor], reg: float) -> torch.Tensor:
    """EASE's solution for the ``(n, n)`` float64 Gram matrix that ``gram()`` builds:
    :math:`P = (G + \\lambda I)^{-1}`, :math:`B = -P / P_{jj}` (column :math:`j`), zero diagonal,
    float64 in LAPACK's column-major layout (:class:`EASE` over items, :class:`UserEASE` over
    users). At most two ``(n, n)`` float64 matrices are alive at a time (14.4 GB at 30k items,
    where keeping the Gram matrix, its factor, the inverse and B alive at once would take 29 GB):
    the Gram matrix is built here, so that nothing else holds it once it is factored."""
    g = gram()
    g.diagonal().add_(reg)
    factor = torch.linalg.cholesky(g)
    del g
    p = torch.cholesky_inverse(factor)  # (G + λI)^-1, SPD: half an LU's cost
    del factor
    p.div_(p.diagonal().neg())  # B = -P / P_jj: column j divided by -P_jj (a copy of the diagonal)
    p.diagonal().zero_()
    return p


def session_gram(train: Interactions, n_items: int, hours: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(I, I)`` float64 :math:`G_{ij} = \\sum_u \\exp(-|t_{ui} - t_{uj}| / \\tau)` over the users
    who interacted with both ``i`` and ``j`` (:class:`EASE` with ``session_hours``), ``tau`` =
    ``hours``; a repeated (user, item) pair counts once, at its first time. Work is
    :math:`O(\\sum_u n_u^2)`, as for :math:`X^\\top X`, one user at a time."""
    if train.timestamp is None:
        raise ValueError("session_hours: the training interactions have no timestamps")
    order = np.lexsort((train.timestamp, train.item, train.user))
    user, item, seconds = train.user[order], train.item[order], train.timestamp[order]
    first = np.ones(len(user), dtype=bool)
    first[1:] = (user[1:] != user[:-1]) | (item[1:] != item[:-1])  # one entry per (user, item)
    user, item, seconds = user[first], item[first], seconds[first]
    starts = np.searchsorted(user, np.arange(user.max(initial=-1) + 2))
    gram = torch.zeros(n_items, n_items, dtype=torch.float64, device=device)
    items = torch.as_tensor(item, dtype=torch.long, device=device)
    hours_at = torch.as_tensor(seconds, dtype=torch.float64, device=device) / 3600.0
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):  # one user's items
        i, t = items[a:b], hours_at[a:b]
        pair = (i[:, None].expand(-1, b - a), i[None, :].expand(b - a, -1))
        gram.index_put_(pair, torch.exp(-(t[:, None] - t[None, :]).abs() / hours), accumulate=True)
    return gram
