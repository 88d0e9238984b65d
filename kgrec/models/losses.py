"""Combining the towers' losses into one objective."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from kgrec.models.config import LOSS_MODES


class JointLoss(nn.Module):
    r"""Weighted sum of task losses, fixed or learned.

    .. math::
        \texttt{fixed}:\ \mathcal{L} = \sum_m \lambda_m \mathcal{L}_m, \qquad
        \texttt{uncertainty}:\ \mathcal{L} = \sum_m \lambda_m e^{-s_m} \mathcal{L}_m + s_m, \qquad
        \texttt{gradnorm}:\ \mathcal{L} = \sum_m w_m \mathcal{L}_m

    The second is the homoscedastic-uncertainty weighting of Kendall, Gal & Cipolla, `"Multi-Task
    Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics"
    <https://arxiv.org/abs/1705.07115>`_ (CVPR 2018), with learned :math:`s_m = \log \sigma_m^2`
    (initialised to 0). This is Kendall et al.'s regression form
    :math:`\frac{1}{2\sigma^2}\mathcal{L} + \log\sigma` times 2, used for every task (their
    classification form halves the :math:`s_m` term). At the optimum in :math:`s_m`,
    :math:`e^{s_m} = \lambda_m \mathcal{L}_m`, so each task's effective weight
    :math:`\lambda_m e^{-s_m}` tends to :math:`1 / \mathcal{L}_m` whatever :math:`\lambda_m`:
    the fixed :math:`\lambda_m` (default 1) still multiply in that mode, but they set the starting
    weights (:math:`s_m = 0`), not where the weights settle.

    ``pcgrad`` sums the losses as ``fixed`` does; the trainer then replaces the gradient of the
    shared parameters by :func:`project_conflicting` of the terms' gradients (:meth:`terms`).

    ``gradnorm`` learns the weights :math:`w_m` (initialised to :math:`\lambda_m`) by GradNorm,
    Chen et al., `"GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
    Networks" <https://arxiv.org/abs/1711.02257>`_ (ICML 2018): the model steps on the sum with the
    weights held constant, and the weights step on the gradient that :meth:`balance` sets from the
    norms of the tasks' gradients on the shared parameters (:func:`gradnorm_weight_grad`), after
    which :meth:`renormalize` keeps :math:`\sum_m w_m = \sum_m \lambda_m`. Tasks whose
    gradients are small for how slowly their loss falls gain weight.

    Tasks absent from the dict passed to :meth:`forward` (e.g. no KG triples in this batch) are
    skipped. A task with :math:`\lambda_m = 0` is logged but left out of the sum: in uncertainty
    mode its term would be :math:`s_m` alone, which the optimiser lowers without bound.

    Args:
        tasks: task names.
        weights: :math:`\lambda_m` per task; missing tasks get 1. (default: all 1)
        mode: ``"fixed"``, ``"uncertainty"``, ``"pcgrad"`` or ``"gradnorm"``. (default: ``"fixed"``)
        alpha: GradNorm's :math:`\alpha`, the strength of the pull towards a common training
            rate (``0``: equal gradient norms). (default: ``1.5``, the paper's)
    """

    def __init__(
        self,
        tasks: Sequence[str],
        weights: Mapping[str, float] | None = None,
        mode: Literal["fixed", "uncertainty", "pcgrad", "gradnorm"] = "fixed",
        alpha: float = 1.5,
    ) -> None:
        super().__init__()
        tasks = list(tasks)
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks: expected a non-empty list of distinct names, got {tasks!r}")
        if mode not in LOSS_MODES:
            raise ValueError(f"mode: expected one of {list(LOSS_MODES)}, got {mode!r}")
        if alpha < 0:
            raise ValueError(f"alpha: expected >= 0, got {alpha}")
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(tasks))
        if unknown:
            raise ValueError(f"weights: unknown tasks {unknown}; expected some of {tasks}")
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"weights: expected non-negative values, got {weights}")
        self.tasks = tasks
        self.mode = mode
        self.weights = {t: float(weights.get(t, 1.0)) for t in tasks}
        self.alpha = float(alpha)
        self.log_vars = nn.Parameter(torch.zeros(len(tasks))) if mode == "uncertainty" else None  # s_m
        self.task_weights = nn.Parameter(torch.zeros(len(tasks))) if mode == "gradnorm" else None  # w_m
        # L_m(0), GradNorm's reference for each task's training rate (NaN until the task's first step)
        self.register_buffer("initial_losses", torch.full((len(tasks),), math.nan) if mode == "gradnorm" else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.log_vars is not None:
            nn.init.zeros_(self.log_vars)
        if self.task_weights is not None:
            with torch.no_grad():
                self.task_weights.copy_(torch.tensor([self.weights[t] for t in self.tasks]))
            self.initial_losses.fill_(math.nan)

    def effective_weights(self) -> dict[str, float]:
        r"""The current weight of each task: :math:`\lambda_m`, :math:`\lambda_m e^{-s_m}` or :math:`w_m`."""
        if self.log_vars is not None:
            return {t: self.weights[t] * float(torch.exp(-s)) for t, s in zip(self.tasks, self.log_vars.detach(), strict=True)}
        if self.task_weights is not None:
            return dict(zip(self.tasks, self.task_weights.detach().tolist(), strict=True))
        return dict(self.weights)

    def active(self, losses: Mapping[str, object]) -> list[str]:
        r"""The tasks in ``losses`` that the sum holds: those with :math:`\lambda_m > 0`."""
        return [t for t in self.tasks if t in losses and self.weights[t] > 0]

    def terms(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        r"""The weighted terms :math:`\lambda_m \mathcal{L}_m` (``gradnorm``: :math:`w_m
        \mathcal{L}_m`, the weights held constant) of the tasks present with :math:`\lambda_m >
        0` (fixed weights: what ``pcgrad`` projects)."""
        weights = self.weights if self.task_weights is None else self.effective_weights()
        return {t: weights[t] * losses[t] for t in self.active(losses)}

    def balance(self, losses: Mapping[str, Tensor | float], grad_norms: Mapping[str, Tensor | float]) -> None:
        r"""GradNorm's step on the weights (``gradnorm`` mode): set ``task_weights.grad`` from this
        step's task losses :math:`\mathcal{L}_m` and the norms :math:`\|\nabla_\theta
        \mathcal{L}_m\|` of their unweighted gradients on the shared parameters, for the tasks in
        both (a task's first loss is kept as its :math:`\mathcal{L}_m(0)`). The optimiser then
        steps the weights; call :meth:`renormalize` after it.

        A task whose loss this step is not a positive finite number (0 from a batch without its
        rows) sits the step out: kept as :math:`\mathcal{L}_m(0)`, a 0 had made its ratio
        :math:`\mathcal{L}_m / 10^{-12}` for the rest of the run, pulling every other weight to
        its floor; averaged in, its ratio 0 would raise the others' :math:`r_m`."""
        if self.task_weights is None:
            raise RuntimeError(f"balance: only for mode 'gradnorm', this loss is {self.mode!r}")
        index = [self.tasks.index(t) for t in self.active(losses)
                 if t in grad_norms and 0.0 < float(losses[t]) < math.inf]  # fmt: skip
        if not index:
            return
        w = self.task_weights
        at = torch.tensor(index, device=w.device)
        current = torch.tensor([float(losses[self.tasks[i]]) for i in index], device=w.device)
        norms = torch.tensor([float(grad_norms[self.tasks[i]]) for i in index], device=w.device)
        with torch.no_grad():
            initial = self.initial_losses[at]
            initial = torch.where(torch.isnan(initial), current, initial)
            self.initial_losses[at] = initial
        grad = torch.zeros_like(w)
        grad[at] = gradnorm_weight_grad(w.detach()[at], norms, current / initial.clamp_min(1e-12), self.alpha)
        self.task_weights.grad = grad

    @torch.no_grad()
    def renormalize(self) -> None:
        r"""Rescale the GradNorm weights so that :math:`\sum_m w_m = \sum_m \lambda_m`, after
        raising each to at least :math:`10^{-3} \lambda_m` (so none turns negative; a task weighted
        :math:`\lambda_m = 0` stays 0)."""
        if self.task_weights is None or not any(self.weights.values()):
            return
        prior = torch.tensor([self.weights[t] for t in self.tasks]).to(self.task_weights)
        w = torch.maximum(self.task_weights, 1e-3 * prior) * (prior > 0)
        self.task_weights.copy_(w * (prior.sum() / w.sum()))

    def forward(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``(total, logs)``: the scalar objective, and detached per-task values for logging
        (``loss/<task>``, plus ``weight/<task>`` in the uncertainty and gradnorm modes)."""
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
            elif self.task_weights is not None:
                logs[f"weight/{task}"] = self.task_weights[self.tasks.index(task)].detach()
            total = term if total is None else total + term
        if total is None:  # every task present weighs 0: a zero that still backpropagates
            total = sum(0.0 * value for value in losses.values())
        logs["loss/total"] = total.detach()
        return total, logs

    def extra_repr(self) -> str:
        alpha = f", alpha={self.alpha}" if self.mode == "gradnorm" else ""
        return f"tasks={self.tasks}, mode={self.mode!r}, weights={self.weights}{alpha}"


def gradnorm_weight_grad(weights: Tensor, grad_norms: Tensor, loss_ratios: Tensor, alpha: float) -> Tensor:
    r"""The gradient of GradNorm's loss with respect to the task weights: ``(M,)`` weights
    :math:`w_m`, norms :math:`n_m = \|\nabla_\theta \mathcal{L}_m\|` of the unweighted task
    gradients on the shared parameters and loss ratios :math:`\tilde{\mathcal{L}}_m =
    \mathcal{L}_m / \mathcal{L}_m(0)` -> ``(M,)``.

    .. math::
        G_m = w_m n_m, \quad \bar G = \tfrac{1}{M} \textstyle\sum_m G_m, \quad
        r_m = \tilde{\mathcal{L}}_m \big/ \tfrac{1}{M} \textstyle\sum_n \tilde{\mathcal{L}}_n,

        \mathcal{L}_{\text{grad}} = \sum_m \big| G_m - \bar G\, r_m^{\alpha} \big|, \qquad
        \frac{\partial \mathcal{L}_{\text{grad}}}{\partial w_m}
        = \operatorname{sign}\big(G_m - \bar G\, r_m^{\alpha}\big)\, n_m,

    with the target :math:`\bar G\, r_m^{\alpha}` held constant, as in the paper. A task whose
    loss falls more slowly than the others' (:math:`r_m > 1`) is pulled towards a larger gradient.
    """
    if not weights.shape == grad_norms.shape == loss_ratios.shape or weights.dim() != 1:
        raise ValueError(f"weights, grad_norms, loss_ratios: expected equal (M,) shapes, got "
                         f"{tuple(weights.shape)}, {tuple(grad_norms.shape)}, {tuple(loss_ratios.shape)}")  # fmt: skip
    norms = weights * grad_norms  # G_m
    rates = loss_ratios / loss_ratios.mean().clamp_min(1e-12)  # r_m
    target = norms.mean() * rates.pow(alpha)
    return torch.sign(norms - target) * grad_norms


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
