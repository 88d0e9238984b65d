"""Combining the towers' losses into one objective."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, nn


class JointLoss(nn.Module):
    r"""Weighted sum of task losses, fixed or learned.

    .. math::
        \texttt{fixed}:\ \mathcal{L} = \sum_m \lambda_m \mathcal{L}_m, \qquad
        \texttt{uncertainty}:\ \mathcal{L} = \sum_m \lambda_m e^{-s_m} \mathcal{L}_m + s_m

    The second is the homoscedastic-uncertainty weighting of Kendall, Gal & Cipolla, `"Multi-Task
    Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics"
    <https://arxiv.org/abs/1705.07115>`_ (CVPR 2018), with learned :math:`s_m = \log \sigma_m^2`
    (initialised to 0; at the optimum :math:`e^{s_m} = \lambda_m \mathcal{L}_m`, so each task's
    effective weight :math:`e^{-s_m}` is inversely proportional to its loss). The fixed
    :math:`\lambda_m` (default 1) still multiply in that mode, as priors.

    ``pcgrad`` sums the losses as ``fixed`` does; the trainer then replaces the gradient of the
    shared parameters by :func:`project_conflicting` of the terms' gradients (:meth:`terms`).

    Tasks absent from the dict passed to :meth:`forward` (e.g. no KG triples in this batch) are
    skipped. A task with :math:`\lambda_m = 0` is logged but left out of the sum: in uncertainty
    mode its term would be :math:`s_m` alone, which the optimiser lowers without bound.

    Args:
        tasks: task names.
        weights: :math:`\lambda_m` per task; missing tasks get 1. (default: all 1)
        mode: ``"fixed"``, ``"uncertainty"`` or ``"pcgrad"``. (default: ``"fixed"``)
    """

    def __init__(
        self,
        tasks: Sequence[str],
        weights: Mapping[str, float] | None = None,
        mode: Literal["fixed", "uncertainty", "pcgrad"] = "fixed",
    ) -> None:
        super().__init__()
        tasks = list(tasks)
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks: expected a non-empty list of distinct names, got {tasks!r}")
        if mode not in ("fixed", "uncertainty", "pcgrad"):
            raise ValueError(f"mode: expected 'fixed', 'uncertainty' or 'pcgrad', got {mode!r}")
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(tasks))
        if unknown:
            raise ValueError(f"weights: unknown tasks {unknown}; expected some of {tasks}")
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"weights: expected non-negative values, got {weights}")
        self.tasks = tasks
        self.mode = mode
        self.weights = {t: float(weights.get(t, 1.0)) for t in tasks}
        self.log_vars = nn.Parameter(torch.zeros(len(tasks))) if mode == "uncertainty" else None  # s_m
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.log_vars is not None:
            nn.init.zeros_(self.log_vars)

    def effective_weights(self) -> dict[str, float]:
        r"""The current weight of each task: :math:`\lambda_m` or :math:`\lambda_m e^{-s_m}`."""
        if self.log_vars is None:
            return dict(self.weights)
        return {t: self.weights[t] * float(torch.exp(-s)) for t, s in zip(self.tasks, self.log_vars.detach(), strict=True)}

    def terms(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        r"""The weighted terms :math:`\lambda_m \mathcal{L}_m` of the tasks present with
        :math:`\lambda_m > 0` (fixed weights: what ``pcgrad`` projects)."""
        return {t: self.weights[t] * losses[t] for t in self.tasks if t in losses and self.weights[t] > 0}

    def forward(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``(total, logs)``: the scalar objective, and detached per-task values for logging
        (``loss/<task>``, plus ``weight/<task>`` in uncertainty mode)."""
        unknown = sorted(set(losses) - set(self.tasks))
        if unknown:
            raise ValueError(f"losses: unknown tasks {unknown}; expected some of {self.tasks}")
        if not losses:
            raise ValueError("losses: expected at least one task loss")
        logs = {f"loss/{task}": losses[task].detach() for task in self.tasks if task in losses}
        total: Tensor | None = None
        for task, term in self.terms(losses).items():
            if self.log_vars is not None:
                s = self.log_vars[self.tasks.index(task)]
                term = term * torch.exp(-s) + s
                logs[f"weight/{task}"] = (self.weights[task] * torch.exp(-s)).detach()
            total = term if total is None else total + term
        if total is None:  # every task present weighs 0: a zero that still backpropagates
            total = sum(0.0 * value for value in losses.values())
        logs["loss/total"] = total.detach()
        return total, logs

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, mode={self.mode!r}, weights={self.weights}"


def project_conflicting(grads: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, int]:
    r"""PCGrad's gradient surgery: ``(M, P)`` task gradients -> the ``(P,)`` gradient to step on,
    and the number of conflicting ordered pairs met.

    From Yu et al., `"Gradient Surgery for Multi-Task Learning" <https://arxiv.org/abs/2001.06782>`_
    (NeurIPS 2020): each task's gradient :math:`g_m` is projected, in turn, onto the normal plane
    of every other task's gradient :math:`g_n` it conflicts with (visited in a random order):

    .. math::
        \tilde g_m \leftarrow \tilde g_m - \frac{\min(0,\ \tilde g_m \cdot g_n)}{\|g_n\|^2} \, g_n,
        \qquad g = \sum_m \tilde g_m,

    with :math:`\tilde g_m` starting at :math:`g_m` and the :math:`g_n` the original gradients.
    Gradients that do not conflict (:math:`g_m \cdot g_n \ge 0`) are summed unchanged, so
    without conflicts :math:`g = \sum_m g_m`, the gradient of the summed loss. With two tasks the
    result never points against either task (:math:`g \cdot g_m \ge 0`).

    Args:
        grads: ``(M, P)`` flattened gradients, one row per task.
        generator: draws each task's visiting order (``None``: the global generator).
    """
    if grads.dim() != 2:
        raise ValueError(f"grads: expected (tasks, parameters), got shape {tuple(grads.shape)}")
    norms = (grads * grads).sum(1)  # ||g_n||^2
    projected = grads.clone()
    conflicts = 0
    for m in range(len(grads)):
        for n in torch.randperm(len(grads), generator=generator).tolist():
            if n == m or norms[n] == 0:
                continue
            dot = projected[m] @ grads[n]
            if dot < 0:
                projected[m] -= dot / norms[n] * grads[n]
                conflicts += 1
    return projected.sum(0), conflicts
