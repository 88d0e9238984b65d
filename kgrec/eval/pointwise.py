"""Pointwise metrics: rating errors (RMSE, MAE) and ROC AUC of scores against binary labels.

.. math::
    \\mathrm{RMSE} = \\sqrt{\\tfrac{1}{N} \\sum_n (\\hat y_n - y_n)^2} \\qquad
    \\mathrm{MAE}  = \\tfrac{1}{N} \\sum_n |\\hat y_n - y_n|

    \\mathrm{AUC} = \\frac{\\sum_{n: y_n = 1} \\mathrm{rank}(s_n) - P (P + 1) / 2}{P \\, N_{neg}}

where ranks are 1-based ranks of the scores in increasing order, tied scores sharing the
average of their ranks (Mann-Whitney U); ``P`` and ``N_neg`` count positives and negatives.
This equals the probability that a random positive outscores a random negative, ties
counting one half. Everything is vectorised in float64; inputs may be torch tensors, numpy
arrays (of any strides) or lists, of one shape up to dimensions of size 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


def _as_tensor(values: ArrayLike, name: str) -> torch.Tensor:
    """``values`` as a float64 tensor of its own shape: a numpy array or a list is copied, so a
    reversed (negative-stride) or read-only array reads as any other."""
    if isinstance(values, torch.Tensor):
        tensor = values.detach().double()
    else:
        tensor = torch.from_numpy(np.array(values, dtype=np.float64))
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} holds NaN or infinite values: expected finite numbers")
    return tensor


def _pair(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """``pred`` and ``target`` flattened to ``(N,)`` float64, paired value by value: their shapes
    must agree but for dimensions of size 1 (``(N, 1)`` against ``(N,)``), as a ``(2, 3)``
    against a ``(3, 2)`` would pair values that do not belong together."""
    p, t = _as_tensor(pred, "pred"), _as_tensor(target, "target")
    if p.numel() != t.numel():
        raise ValueError(f"pred has {p.numel()} values and target {t.numel()}: expected the same number")
    if p.squeeze().shape != t.squeeze().shape:
        raise ValueError(f"pred has shape {tuple(p.shape)} and target {tuple(t.shape)}: expected the same shape "
                         "(dimensions of size 1 aside)")  # fmt: skip
    if p.numel() == 0:
        raise ValueError("pred and target are empty: expected at least one value")
    return p.reshape(-1), t.reshape(-1).to(p.device)


def rmse(pred: ArrayLike, target: ArrayLike) -> float:
    """Root mean squared error :math:`\\sqrt{\\mathrm{mean}((\\hat y - y)^2)}`."""
    p, t = _pair(pred, target)
    return torch.sqrt(torch.mean((p - t) ** 2)).item()


def mae(pred: ArrayLike, target: ArrayLike) -> float:
    """Mean absolute error :math:`\\mathrm{mean}(|\\hat y - y|)`."""
    p, t = _pair(pred, target)
    return torch.mean(torch.abs(p - t)).item()


def auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """ROC AUC of ``scores`` for binary ``labels`` (1 / True = positive), ties by average rank.

    Raises:
        ValueError: when the labels are not 0/1, or hold only one class (AUC undefined).
    """
    s, y = _pair(scores, labels)
    if not ((y == 0) | (y == 1)).all():
        raise ValueError("labels must be 0/1 (or bool)")
    n_pos = y.sum()
    n_neg = y.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels hold {int(n_pos)} positives and {int(n_neg)} negatives: AUC needs both")
    _, group, count = torch.unique(s, sorted=True, return_inverse=True, return_counts=True)
    # group g covers ranks (before_g + 1) ... (before_g + count_g); its average rank:
    before = torch.cumsum(count, 0) - count
    average_rank = before.double() + (count.double() + 1.0) / 2.0
    rank_sum = (average_rank[group] * y).sum()
    return ((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()
