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

    Tasks absent from the dict passed to :meth:`forward` (e.g. no KG triples in this batch) are
    skipped. A task with :math:`\lambda_m = 0` is logged but left out of the sum: in uncertainty
    mode its term would be :math:`s_m` alone, which the optimiser lowers without bound.

    Args:
        tasks: task names.
        weights: :math:`\lambda_m` per task; missing tasks get 1. (default: all 1)
        mode: ``"fixed"`` or ``"uncertainty"``. (default: ``"fixed"``)
    """

    def __init__(
        self,
        tasks: Sequence[str],
        weights: Mapping[str, float] | None = None,
        mode: Literal["fixed", "uncertainty"] = "fixed",
    ) -> None:
        super().__init__()
        tasks = list(tasks)
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks: expected a non-empty list of distinct names, got {tasks!r}")
        if mode not in ("fixed", "uncertainty"):
            raise ValueError(f"mode: expected 'fixed' or 'uncertainty', got {mode!r}")
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

    def forward(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``(total, logs)``: the scalar objective, and detached per-task values for logging
        (``loss/<task>``, plus ``weight/<task>`` in uncertainty mode)."""
        unknown = sorted(set(losses) - set(self.tasks))
        if unknown:
            raise ValueError(f"losses: unknown tasks {unknown}; expected some of {self.tasks}")
        if not losses:
            raise ValueError("losses: expected at least one task loss")
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for m, task in enumerate(self.tasks):
            if task not in losses:
                continue
            value = losses[task]
            logs[f"loss/{task}"] = value.detach()
            if self.weights[task] == 0:
                continue
            term = self.weights[task] * value
            if self.log_vars is not None:
                s = self.log_vars[m]
                term = term * torch.exp(-s) + s
                logs[f"weight/{task}"] = (self.weights[task] * torch.exp(-s)).detach()
            total = term if total is None else total + term
        if total is None:  # every task present weighs 0: a zero that still backpropagates
            total = sum(0.0 * value for value in losses.values())
        logs["loss/total"] = total.detach()
        return total, logs

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, mode={self.mode!r}, weights={self.weights}"
