"""A fixed sparse matrix applied to dense features, with a gradient for the features only.

Graph propagation and history pooling both multiply a constant sparse matrix ``A`` (its
values come from the graph, not from training) by a learned dense matrix ``X``. Keeping
``A`` and ``A^T`` in CSR makes the forward product ``A X`` and its backward ``A^T Ȳ`` one
SpMM call each, which on CPU is several times faster than gather + scatter over the edges.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def product_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a sparse product with features of ``dtype`` runs in: fp32 for half precision
    (bf16 / fp16 autocast), since CPU sparse kernels have no bf16 and a sum over many neighbours
    keeps its precision; otherwise ``dtype`` itself."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _FixedSpMM(torch.autograd.Function):
    """``Y = A X`` for a constant sparse ``A``; backward ``X̄ = A^T Ȳ``."""

    @staticmethod
    def forward(ctx, x: Tensor, a: Tensor, a_t: Tensor) -> Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        with torch.autocast(x.device.type, enabled=False):  # autocast would cast A X to bf16
            return a @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        if not ctx.needs_input_grad[0]:
            return None, None, None
        with torch.autocast(grad.device.type, enabled=False):
            return ctx.a_t @ grad.to(ctx.a_t.dtype).contiguous(), None, None


def _csr(indices: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce()
        return coo.to_sparse_csr()


class SparseOperator:
    """A constant sparse matrix ``A`` of shape ``(m, n)``: ``op @ X`` is ``A X`` with ``X̄ = A^T Ȳ``.

    Args:
        indices: ``(2, nnz)`` int64 row and column indices (duplicates are summed).
        values: ``(nnz,)`` floating values.
        shape: ``(m, n)``.
    """

    def __init__(self, indices: Tensor, values: Tensor, shape: tuple[int, int]) -> None:
        if indices.dim() != 2 or indices.size(0) != 2:
            raise ValueError(f"indices: expected shape (2, nnz), got {tuple(indices.shape)}")
        if values.shape != (indices.size(1),):
            raise ValueError(f"values: expected shape ({indices.size(1)},), got {tuple(values.shape)}")
        self.shape = (int(shape[0]), int(shape[1]))
        if indices.size(1):  # unchecked COO -> CSR writes out of bounds (heap corruption, abort)
            (r0, c0), (r1, c1) = indices.amin(1).tolist(), indices.amax(1).tolist()
            if min(r0, c0) < 0 or r1 >= self.shape[0] or c1 >= self.shape[1]:
                raise ValueError(
                    f"indices: expected rows in [0, {self.shape[0]}) and columns in [0, {self.shape[1]}), "
                    f"got rows in [{r0}, {r1}] and columns in [{c0}, {c1}]"
                )
        self.csr = _csr(indices, values, self.shape)  # (m, n)
        self.csr_t = _csr(indices.flip(0), values, (self.shape[1], self.shape[0]))  # (n, m)

    @classmethod
    def from_csr(cls, csr: Tensor, csr_t: Tensor) -> SparseOperator:
        """Wrap an existing CSR matrix ``A`` and its transpose (no copy, no checks)."""
        out = object.__new__(cls)
        out.shape = (int(csr.shape[0]), int(csr.shape[1]))
        out.csr, out.csr_t = csr, csr_t
        return out

    @classmethod
    def from_sparse(cls, matrix: Tensor) -> SparseOperator:
        """Wrap a torch sparse (COO or CSR) matrix."""
        coo = matrix.to_sparse_coo().coalesce() if matrix.layout != torch.sparse_coo else matrix.coalesce()
        return cls(coo.indices(), coo.values(), tuple(coo.shape))  # type: ignore[arg-type]

    def __matmul__(self, x: Tensor) -> Tensor:
        """``A X``: ``x`` is ``(n, d)``, the result ``(m, d)``.

        Half-precision ``x`` is multiplied in fp32 (:func:`product_dtype`); the result stays fp32
        under autocast, which casts it for the next op, and is cast back to ``x``'s dtype outside
        it (a model held in bf16, Lightning's ``bf16-true``, has bf16 weights next).
        """
        if x.size(0) != self.shape[1]:
            raise ValueError(f"x: expected {self.shape[1]} rows, got {x.size(0)}")
        dtype = x.dtype
        x = x.to(product_dtype(dtype))
        a, a_t = self.csr, self.csr_t
        if a.dtype != x.dtype or a.device != x.device:
            a, a_t = a.to(x.device, x.dtype), a_t.to(x.device, x.dtype)
        y = _FixedSpMM.apply(x.contiguous(), a, a_t)
        return y if y.dtype == dtype or torch.is_autocast_enabled(y.device.type) else y.to(dtype)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SparseOperator:
        """A copy on ``device`` / in ``dtype``."""
        return SparseOperator.from_csr(
            self.csr.to(device=device, dtype=dtype), self.csr_t.to(device=device, dtype=dtype)
        )

    @property
    def device(self) -> torch.device:
        return self.csr.device

    @property
    def nnz(self) -> int:
        return int(self.csr.values().numel())

    def values_at(self, rows: Tensor, cols: Tensor) -> Tensor:
        """``A[rows[k], cols[k]]`` for each ``k`` (0 where the entry is absent). ``(B,)``."""
        val = self.csr.values()
        key = getattr(self, "_keys", None)
        if key is None:  # sorted: CSR is row-major with sorted columns
            crow, col = self.csr.crow_indices(), self.csr.col_indices()
            key = torch.repeat_interleave(torch.arange(self.shape[0], device=crow.device), crow.diff())
            key = self._keys = key * self.shape[1] + col  # (nnz,)
        query = rows.to(key.device) * self.shape[1] + cols.to(key.device)
        if key.numel() == 0:
            return torch.zeros(query.shape, dtype=val.dtype, device=val.device)
        pos = torch.searchsorted(key, query).clamp(max=key.numel() - 1)
        hit = key[pos] == query
        return torch.where(hit, val[pos], torch.zeros((), dtype=val.dtype, device=val.device))

    def __deepcopy__(self, memo: dict) -> SparseOperator:
        return self  # constant, never modified in place (CSR tensors cannot be deep-copied)

    def __repr__(self) -> str:
        return f"SparseOperator(shape={self.shape}, nnz={self.nnz})"
