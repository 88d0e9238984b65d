"""Multi-task trunks: one input vector in, one representation per task out.

Every trunk keeps its shared parameters in ``self.shared`` and the parameters of task ``t`` in
``self.task_modules[t]``, and :meth:`Trunk.shared_parameters` and :meth:`Trunk.task_parameters`
partition its parameters (as torch-rechub's ``mtl`` utilities expect) by what each task's output
depends on: loss-balancing methods such as GradNorm or PCGrad read the split without knowing the
architecture. (A multi-level :class:`PLE` counts the task experts its shared gates read as shared.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from kgrec.models.config import TRUNK_KINDS

TrunkKind = Literal["identity", "shared_bottom", "mmoe", "ple"]


class MLP(nn.Sequential):
    r"""``Linear -> ReLU -> Dropout`` blocks, the last ``Linear`` plain (no activation), so the
    output can be negative (dot-product retrieval needs signed vectors).

    .. math::
        \mathrm{MLP}(\mathbf{x}) = \mathbf{W}_K\, \mathrm{drop}(\mathrm{relu}(\cdots
        \mathrm{drop}(\mathrm{relu}(\mathbf{W}_1 \mathbf{x} + \mathbf{b}_1)) \cdots)) + \mathbf{b}_K

    Args:
        in_dim: input size.
        hidden: hidden sizes (may be empty: one linear layer).
        out_dim: output size.
        dropout: dropout after each hidden activation. (default: ``0.0``)
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        layers.append(nn.Linear(d, out_dim))
        super().__init__(*layers)
        self.in_dim, self.hidden, self.out_dim = in_dim, tuple(hidden), out_dim

    def reset_parameters(self) -> None:
        for m in self:
            if isinstance(m, nn.Linear):
                m.reset_parameters()


class Trunk(nn.Module):
    r"""Base class: ``forward(x)`` maps ``(n, in_dim)`` to ``{task: (n, out_dim)}``.

    With ``residual=True`` (and ``in_dim == out_dim``) every output is
    :math:`\mathbf{z}_t = \mathbf{x} + f_t(\mathbf{x})`, so the trunk starts close to the
    identity and a plain matrix-factorisation dot product stays reachable.

    Args:
        in_dim: input size.
        tasks: task names, e.g. ``["retrieval", "rating", "like"]``.
        out_dim: output size per task. (default: ``in_dim``)
        residual: add the input to every output. (default: ``True``)
    """

    def __init__(self, in_dim: int, tasks: Sequence[str], out_dim: int | None = None, residual: bool = True) -> None:
        super().__init__()
        tasks = list(tasks)
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks: expected a non-empty list of distinct names, got {tasks!r}")
        self.in_dim = in_dim
        self.out_dim = in_dim if out_dim is None else out_dim
        self.tasks = tasks
        if residual and self.out_dim != in_dim:
            raise ValueError(f"residual=True needs out_dim == in_dim, got {self.out_dim} != {in_dim}")
        self.residual = residual
        self.shared = nn.Module()  # shared parameters live under here
        self.task_modules = nn.ModuleDict({t: nn.Module() for t in tasks})

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters every task's output depends on."""
        return self.shared.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Parameters only ``task``'s output depends on."""
        if task not in self.task_modules:
            raise KeyError(f"task: expected one of {self.tasks}, got {task!r}")
        return self.task_modules[task].parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and isinstance(m, (nn.Linear, MLP)):
                m.reset_parameters()

    def _forward(self, x: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x`` ``(n, in_dim)`` -> ``{task: (n, out_dim)}``."""
        if x.size(-1) != self.in_dim:
            raise ValueError(f"x: expected {self.in_dim} features, got {x.size(-1)}")
        out = self._forward(x)
        if self.residual:
            out = {t: x + z for t, z in out.items()}
        return out

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, tasks={self.tasks}, residual={self.residual}"


class IdentityTrunk(Trunk):
    r""":math:`\mathbf{z}_t = \mathbf{x}` for every task; no parameters (e.g. BPR-MF)."""

    def __init__(self, in_dim: int, tasks: Sequence[str], **_: object) -> None:
        super().__init__(in_dim, tasks, out_dim=in_dim, residual=False)

    def _forward(self, x: Tensor) -> dict[str, Tensor]:
        return {t: x for t in self.tasks}


class SharedBottom(Trunk):
    r"""Shared-bottom multi-task network (Caruana, 1997):

    .. math::
        \mathbf{s} = \mathrm{MLP}_{\textrm{shared}}(\mathbf{x}), \qquad
        \mathbf{z}_t = \mathbf{W}_t\, \mathrm{relu}(\mathbf{s}) + \mathbf{b}_t

    (a per-task linear head :math:`\mathbf{W}_t`, or :math:`\mathbf{z}_t = \mathbf{s}` with
    ``task_heads=False``).

    Args:
        in_dim: input size.
        tasks: task names.
        out_dim: output size. (default: ``in_dim``)
        hidden: hidden sizes of the shared MLP. (default: ``(128,)``)
        dropout: dropout in the MLP. (default: ``0.0``)
        task_heads: add the per-task linear heads. (default: ``True``)
        residual: see :class:`Trunk`. (default: ``True``)
    """

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str],
        out_dim: int | None = None,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
        task_heads: bool = True,
        residual: bool = True,
        **_: object,
    ) -> None:
        super().__init__(in_dim, tasks, out_dim, residual)
        self.shared.bottom = MLP(in_dim, hidden, self.out_dim, dropout)
        self.task_heads = task_heads
        if task_heads:
            for t in self.tasks:
                self.task_modules[t].head = nn.Linear(self.out_dim, self.out_dim)

    def _forward(self, x: Tensor) -> dict[str, Tensor]:
        s = self.shared.bottom(x)  # (n, out)
        if not self.task_heads:
            return {t: s for t in self.tasks}
        s = torch.relu(s)
        return {t: self.task_modules[t].head(s) for t in self.tasks}


def _mix(gate: nn.Linear, gate_input: Tensor, experts: list[Tensor]) -> Tensor:
    """``sum_k softmax(W_g x)_k E_k``: ``experts`` K tensors ``(n, d)`` -> ``(n, d)``."""
    g = gate(gate_input).softmax(-1)  # (n, K)
    return torch.einsum("nk,knd->nd", g, torch.stack(experts))


class MMoE(Trunk):
    r"""Multi-gate mixture-of-experts, from Ma et al., `"Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts" <https://doi.org/10.1145/3219819.3220007>`_ (KDD 2018):

    .. math::
        \mathbf{z}_t = \sum_{k=1}^{K} g_{t,k}(\mathbf{x})\, E_k(\mathbf{x}), \qquad
        \mathbf{g}_t(\mathbf{x}) = \mathrm{softmax}(\mathbf{W}_t \mathbf{x})

    Experts :math:`E_k` (MLPs) are shared; the gates :math:`\mathbf{W}_t` are the task parameters.

    Args:
        in_dim: input size.
        tasks: task names.
        out_dim: output size. (default: ``in_dim``)
        num_experts: :math:`K`. (default: ``4``)
        hidden: hidden sizes of each expert MLP. (default: ``(128,)``)
        dropout: dropout in the experts. (default: ``0.0``)
        residual: see :class:`Trunk`. (default: ``True``)
    """

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str],
        out_dim: int | None = None,
        num_experts: int = 4,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
        residual: bool = True,
        **_: object,
    ) -> None:
        super().__init__(in_dim, tasks, out_dim, residual)
        if num_experts < 1:
            raise ValueError(f"num_experts: expected >= 1, got {num_experts}")
        self.num_experts = num_experts
        self.shared.experts = nn.ModuleList(MLP(in_dim, hidden, self.out_dim, dropout) for _ in range(num_experts))
        for t in self.tasks:
            self.task_modules[t].gate = nn.Linear(in_dim, num_experts)

    def _forward(self, x: Tensor) -> dict[str, Tensor]:
        experts = [e(x) for e in self.shared.experts]  # K x (n, out)
        return {t: _mix(self.task_modules[t].gate, x, experts) for t in self.tasks}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_experts={self.num_experts}"


class PLE(Trunk):
    r"""Progressive layered extraction, from Tang et al., `"Progressive Layered Extraction (PLE): A
    Novel Multi-Task Learning (MTL) Model for Personalized Recommendations"
    <https://doi.org/10.1145/3383313.3412236>`_ (RecSys 2020): ``num_levels`` stacked customized
    gate control (CGC) layers. At level :math:`l`, with task inputs :math:`\mathbf{x}_t^{l}`
    and shared input :math:`\mathbf{x}_s^{l}` (all equal to :math:`\mathbf{x}` at level 0):

    .. math::
        \mathbf{x}_t^{l+1} = \sum_{E \in \mathcal{E}_t^{l} \cup \mathcal{E}_s^{l}}
            g_{t,E}(\mathbf{x}_t^{l})\, E(\cdot), \qquad
        \mathbf{x}_s^{l+1} = \sum_{E \in \mathcal{E}_s^{l} \cup \bigcup_t \mathcal{E}_t^{l}}
            g_{s,E}(\mathbf{x}_s^{l})\, E(\cdot), \qquad
        \mathbf{z}_t = \mathbf{x}_t^{L}

    where task experts :math:`\mathcal{E}_t^{l}` read :math:`\mathbf{x}_t^{l}`, shared experts
    :math:`\mathcal{E}_s^{l}` read :math:`\mathbf{x}_s^{l}`, and gates are softmax-linear. The
    shared gate exists on all levels but the last, and only with shared experts: with
    ``num_shared_experts=0`` no expert reads :math:`\mathbf{x}_s^{l+1}`, so there is no shared
    path and the tasks' branches are independent. Shared parameters: shared experts and shared
    gates, and the parts of a task's branch that the shared gate reads (:meth:`shared_parameters`);
    task parameters: the rest of that task's experts and gates. With one level (or no shared
    experts) that is the task's whole branch; with :math:`L` levels a task's experts below level
    :math:`L-1` feed the shared gate, and its gates below level :math:`L-2` feed those experts, so
    every task's output depends on them.

    Args:
        in_dim: input size.
        tasks: task names.
        out_dim: output size. (default: ``in_dim``)
        num_levels: number of CGC levels :math:`L`. (default: ``1``)
        num_shared_experts: shared experts per level. (default: ``2``)
        num_task_experts: experts per task per level. (default: ``1``)
        hidden: hidden sizes of each expert MLP. (default: ``(128,)``)
        dropout: dropout in the experts. (default: ``0.0``)
        residual: see :class:`Trunk`. (default: ``True``)
    """

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str],
        out_dim: int | None = None,
        num_levels: int = 1,
        num_shared_experts: int = 2,
        num_task_experts: int = 1,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
        residual: bool = True,
        **_: object,
    ) -> None:
        super().__init__(in_dim, tasks, out_dim, residual)
        if num_levels < 1 or num_shared_experts < 0 or num_task_experts < 1:
            raise ValueError(
                "num_levels >= 1, num_shared_experts >= 0 and num_task_experts >= 1 expected, got "
                f"{num_levels}, {num_shared_experts}, {num_task_experts}"
            )
        self.num_levels = num_levels
        self.num_shared_experts = num_shared_experts
        self.num_task_experts = num_task_experts
        n_tasks = len(self.tasks)
        self.shared.experts = nn.ModuleList()  # [level] -> ModuleList of experts
        self.shared.gates = nn.ModuleList()  # [level] shared gate, levels 0 .. L-2 (none if S = 0)
        for t in self.tasks:
            self.task_modules[t].experts = nn.ModuleList()
            self.task_modules[t].gates = nn.ModuleList()
        for level in range(num_levels):
            d_in = in_dim if level == 0 else self.out_dim
            self.shared.experts.append(
                nn.ModuleList(MLP(d_in, hidden, self.out_dim, dropout) for _ in range(num_shared_experts))
            )
            for t in self.tasks:
                mods = self.task_modules[t]
                mods.experts.append(
                    nn.ModuleList(MLP(d_in, hidden, self.out_dim, dropout) for _ in range(num_task_experts))
                )
                mods.gates.append(nn.Linear(d_in, num_task_experts + num_shared_experts))
            if level < num_levels - 1 and num_shared_experts > 0:  # else nothing reads its output
                self.shared.gates.append(nn.Linear(d_in, n_tasks * num_task_experts + num_shared_experts))

    def _branch(self, task: str, shared: bool) -> Iterator[nn.Parameter]:
        """Task ``task``'s experts and gates that every task depends on (``shared``) or only it
        does: the experts of level :math:`l` feed the shared gate of that level (:math:`l < L-1`,
        with shared experts), and the task's gate of level :math:`l` feeds its experts of level
        :math:`l + 1`."""
        last = len(self.shared.gates)  # levels whose task experts the shared gates read
        modules = self.task_modules[task]
        for level in range(self.num_levels):
            if (level < last) == shared:
                yield from modules.experts[level].parameters()
            if (level < last - 1) == shared:
                yield from modules.gates[level].parameters()

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Shared experts and gates, and the task experts and gates the shared gates read."""
        yield from self.shared.parameters()
        for t in self.tasks:
            yield from self._branch(t, shared=True)

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """The experts and gates of ``task`` that no other task's output depends on."""
        if task not in self.task_modules:
            raise KeyError(f"task: expected one of {self.tasks}, got {task!r}")
        return self._branch(task, shared=False)

    def _forward(self, x: Tensor) -> dict[str, Tensor]:
        xs = x  # shared input
        xt = {t: x for t in self.tasks}  # task inputs
        for level in range(self.num_levels):
            shared_out = [e(xs) for e in self.shared.experts[level]]  # S x (n, out)
            task_out = {t: [e(xt[t]) for e in self.task_modules[t].experts[level]] for t in self.tasks}
            new_xt = {
                t: _mix(self.task_modules[t].gates[level], xt[t], task_out[t] + shared_out) for t in self.tasks
            }
            if level < len(self.shared.gates):
                all_out = [o for t in self.tasks for o in task_out[t]] + shared_out
                xs = _mix(self.shared.gates[level], xs, all_out)
            xt = new_xt
        return xt

    def extra_repr(self) -> str:
        return super().extra_repr() + (
            f", num_levels={self.num_levels}, num_shared_experts={self.num_shared_experts}, "
            f"num_task_experts={self.num_task_experts}"
        )


_TRUNKS: dict[str, type[Trunk]] = {
    "identity": IdentityTrunk,
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
}


def build_trunk(
    kind: TrunkKind,
    in_dim: int,
    tasks: Sequence[str],
    *,
    out_dim: int | None = None,
    hidden: Sequence[int] = (128,),
    dropout: float = 0.0,
    residual: bool = True,
    num_experts: int = 4,
    num_levels: int = 1,
    num_shared_experts: int = 2,
    num_task_experts: int = 1,
) -> Trunk:
    """Build a trunk of ``kind`` in ``{"identity", "shared_bottom", "mmoe", "ple"}``; arguments a
    kind does not use are ignored (``num_experts`` is MMoE's, ``num_levels`` and the expert
    counts are PLE's)."""
    if kind not in _TRUNKS:
        raise ValueError(f"kind: expected one of {TRUNK_KINDS}, got {kind!r}")
    return _TRUNKS[kind](
        in_dim,
        tasks,
        out_dim=out_dim,
        hidden=tuple(hidden),
        dropout=dropout,
        residual=residual,
        num_experts=num_experts,
        num_levels=num_levels,
        num_shared_experts=num_shared_experts,
        num_task_experts=num_task_experts,
    )
