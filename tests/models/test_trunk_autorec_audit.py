"""Audit of the trunks and the AutoRec term against independent float64 references (loops over
experts, dense matrices), on edge cases: one expert, no hidden layer, one task, no shared expert
in PLE, odd widths, batches of 0 and 1, dropout in train / eval mode, bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kgrec.models import MLP, PLE, ItemAutoRec, MMoE, SharedBottom, build_trunk, rating_matrix
from kgrec.models._sparse import SparseOperator

TASKS = ["retrieval", "rating", "like"]


# ---------------------------------------------------------------- references (float64, loops)
def ref_mlp(mlp: MLP, x: torch.Tensor) -> torch.Tensor:
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    for k, lin in enumerate(linears):
        x = x @ lin.weight.T + lin.bias
        if k < len(linears) - 1:
            x = x.clamp_min(0)
    return x


def ref_mix(gate: nn.Linear, gate_input: torch.Tensor, experts: list[torch.Tensor]) -> torch.Tensor:
    logits = gate_input @ gate.weight.T + gate.bias  # (n, K)
    assert logits.shape[1] == len(experts)
    w = torch.exp(logits - logits.max(1, keepdim=True).values)
    w = w / w.sum(1, keepdim=True)
    out = torch.zeros_like(experts[0])
    for k, e in enumerate(experts):
        out = out + w[:, k : k + 1] * e
    return out


def ref_shared_bottom(m: SharedBottom, x: torch.Tensor) -> dict[str, torch.Tensor]:
    s = ref_mlp(m.shared.bottom, x)
    if not m.task_heads:
        return {t: s for t in m.tasks}
    head = {t: m.task_modules[t].head for t in m.tasks}
    return {t: s.clamp_min(0) @ head[t].weight.T + head[t].bias for t in m.tasks}


def ref_mmoe(m: MMoE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    experts = [ref_mlp(e, x) for e in m.shared.experts]
    return {t: ref_mix(m.task_modules[t].gate, x, experts) for t in m.tasks}


def ref_ple(m: PLE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Tang et al. (2020), eq. (4)-(6): task gate over [own task experts; shared experts] reading
    the task's previous output; shared gate over [all task experts; shared experts] reading the
    shared previous output, on every level but the last."""
    xs, xt = x, {t: x for t in m.tasks}
    for level in range(m.num_levels):
        shared = [ref_mlp(e, xs) for e in m.shared.experts[level]]
        own = {t: [ref_mlp(e, xt[t]) for e in m.task_modules[t].experts[level]] for t in m.tasks}
        new = {t: ref_mix(m.task_modules[t].gates[level], xt[t], own[t] + shared) for t in m.tasks}
        if level < m.num_levels - 1 and shared:
            xs = ref_mix(m.shared.gates[level], xs, [o for t in m.tasks for o in own[t]] + shared)
        xt = new
    return xt


def reference(trunk, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {SharedBottom: ref_shared_bottom, MMoE: ref_mmoe, PLE: ref_ple}[type(trunk)](trunk, x)
    return {t: x + z for t, z in out.items()} if trunk.residual else out


CASES = [
    ("shared_bottom", dict(hidden=(16,))),
    ("shared_bottom", dict(hidden=(), task_heads=False)),
    ("mmoe", dict(num_experts=1, hidden=())),
    ("mmoe", dict(num_experts=3, hidden=(5, 9))),
    ("ple", dict(num_levels=1, num_shared_experts=2, num_task_experts=1, hidden=(16,))),
    ("ple", dict(num_levels=2, num_shared_experts=0, num_task_experts=2, hidden=(6,))),
    ("ple", dict(num_levels=3, num_shared_experts=1, num_task_experts=2, hidden=())),
]


def make(kind: str, kwargs: dict, tasks=TASKS, in_dim: int = 7, out_dim: int | None = None, residual=True):
    cls = {"shared_bottom": SharedBottom, "mmoe": MMoE, "ple": PLE}[kind]
    torch.manual_seed(0)
    return cls(in_dim, tasks, out_dim=out_dim, residual=residual, **kwargs).double()


@pytest.mark.parametrize(("kind", "kwargs"), CASES)
@pytest.mark.parametrize("tasks", [TASKS, ["rating"]])
@pytest.mark.parametrize("residual", [True, False])
def test_trunks_match_the_float64_reference_outputs_and_gradients(kind, kwargs, tasks, residual) -> None:
    trunk = make(kind, kwargs, tasks, out_dim=None if residual else 5, residual=residual)
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    out, ref = trunk(x), reference(trunk, x)
    assert set(out) == set(tasks)
    weights = {t: torch.randn_like(out[t]) for t in tasks}
    params = [x, *trunk.parameters()]
    loss = sum((weights[t] * out[t]).sum() for t in tasks)
    ref_loss = sum((weights[t] * ref[t]).sum() for t in tasks)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    ref_grads = torch.autograd.grad(ref_loss, params, allow_unused=True)
    for t in tasks:
        torch.testing.assert_close(out[t], ref[t], rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads, strict=True):
        assert (g is None) == (r is None)
        if g is not None:
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("kind", "kwargs"), CASES)
@pytest.mark.parametrize("n", [0, 1])
def test_trunks_take_batches_of_zero_and_one(kind, kwargs, n) -> None:
    trunk = make(kind, kwargs)
    x = torch.randn(n, 7, dtype=torch.float64)
    out, ref = trunk(x), reference(trunk, x)
    for t in TASKS:
        assert out[t].shape == (n, 7)
        torch.testing.assert_close(out[t], ref[t])


@pytest.mark.parametrize(("kind", "kwargs"), CASES)
def test_every_parameter_is_used_and_the_partition_follows_the_dependencies(kind, kwargs) -> None:
    """A shared parameter reaches every task's output, a task parameter only its own task's,
    and none is dead (a dead parameter makes DDP look for unused parameters every step and
    GradNorm measure a task-only gradient as shared)."""
    trunk = make(kind, kwargs)
    out = trunk(torch.randn(4, 7, dtype=torch.float64))
    params = list(trunk.parameters())
    reaches = {
        t: {id(p) for p, g in zip(params, torch.autograd.grad(out[t].sum(), params, retain_graph=True,
                                                              allow_unused=True), strict=True) if g is not None}
        for t in TASKS
    }  # fmt: skip
    for p in trunk.shared_parameters():
        assert all(id(p) in reaches[t] for t in TASKS), "a shared parameter some task does not read"
    for t in TASKS:
        for p in trunk.task_parameters(t):
            assert id(p) in reaches[t] and not any(id(p) in reaches[o] for o in TASKS if o != t)
    assert set().union(*reaches.values()) == {id(p) for p in params}, "dead parameters"


def test_ple_without_shared_experts_has_no_shared_gate() -> None:
    ple = PLE(8, TASKS, num_levels=3, num_shared_experts=0, hidden=(4,))
    assert len(ple.shared.gates) == 0 and not list(ple.shared_parameters())
    assert len(ple(torch.randn(2, 8))) == 3


@pytest.mark.parametrize(("kind", "kwargs"), CASES)
def test_dropout_is_off_in_eval_mode_and_on_in_train_mode(kind, kwargs) -> None:
    trunk = make(kind, {**kwargs, "dropout": 0.5})
    x = torch.randn(32, 7, dtype=torch.float64)
    trunk.eval()
    ref = reference(trunk, x)  # the reference has no dropout
    for t, z in trunk(x).items():
        torch.testing.assert_close(z, ref[t])
    trunk.train()
    if kwargs["hidden"]:  # dropout sits after the hidden activations only
        assert any(not torch.allclose(z, ref[t]) for t, z in trunk(x).items())


@pytest.mark.parametrize("kind", ["shared_bottom", "mmoe", "ple"])
def test_bf16_cpu_autocast_stays_close_to_fp32(kind) -> None:
    torch.manual_seed(0)
    trunk = build_trunk(kind, 16, TASKS, hidden=(32,), num_levels=2)
    x = torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = trunk(x)
    full = trunk(x)
    for t in TASKS:
        assert torch.isfinite(low[t]).all()
        torch.testing.assert_close(low[t].float(), full[t], rtol=0.05, atol=0.05)


@pytest.mark.parametrize("kind", ["mmoe", "ple"])
def test_gates_start_close_to_uniform(kind) -> None:
    """No expert dominates at initialisation (unit-variance inputs of width 64): the largest gate
    weight stays well below 1 on average."""
    torch.manual_seed(0)
    trunk = build_trunk(kind, 64, TASKS, num_experts=4, num_shared_experts=2, num_task_experts=2)
    x = torch.randn(512, 64)
    gates = [m.gate for m in trunk.task_modules.values()] if kind == "mmoe" else [
        m.gates[0] for m in trunk.task_modules.values()]  # fmt: skip
    for gate in gates:
        g = gate(x).softmax(-1)
        assert g.max(-1).values.mean() < 0.5 and g.min(-1).values.mean() > 0.1


# ---------------------------------------------------------------- AutoRec
def dense_autorec(autorec: ItemAutoRec, r: torch.Tensor, users, items, leave_out: bool) -> torch.Tensor:
    """I-AutoRec on a dense ``(U, I)`` float64 matrix ``r``, target entry zeroed with ``leave_out``."""
    out = []
    for u, i in zip(users.tolist(), items.tolist(), strict=True):
        col = r[:, i].clone()
        if leave_out:
            col[u] = 0
        h = torch.sigmoid(col @ autorec.encoder + autorec.encoder_bias)
        out.append(autorec.decoder[u] @ (h - torch.sigmoid(autorec.encoder_bias)))
    return torch.stack(out)


def test_autorec_matches_dense_reference_in_float64_and_reads_only_the_training_matrix() -> None:
    torch.manual_seed(0)
    n_users, n_items = 7, 5
    train_u = torch.tensor([0, 1, 1, 2, 3, 4, 4, 6, 0])
    train_i = torch.tensor([0, 0, 2, 1, 2, 0, 3, 2, 3])
    train_r = torch.tensor([4.0, 2.0, 5.0, 3.0, 1.0, 5.0, 4.0, 2.0, 3.0])
    r = rating_matrix(train_u, train_i, train_r, n_users, n_items)
    op = SparseOperator.from_sparse(r.t())
    autorec = ItemAutoRec(n_users, 4, init_std=0.4).double()
    nn.init.normal_(autorec.encoder_bias)
    dense = r.to_dense().double()
    # training pairs with leave-out, then unobserved pairs (valid / test, and an item with no rating)
    for users, items, leave_out in [(train_u, train_i, True), (torch.tensor([2, 5, 6, 3]), torch.tensor([0, 2, 4, 3]), False)]:
        got = autorec(op, users, items, leave_out=leave_out)
        want = dense_autorec(autorec, dense, users, items, leave_out)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)  # the operator holds fp32 ratings
        params = list(autorec.parameters())
        for g, w in zip(torch.autograd.grad(got.sum(), params), torch.autograd.grad(want.sum(), params), strict=True):
            torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-9)
    assert autorec(op, torch.tensor([1]), torch.tensor([4]))[0] == 0  # item 4: no training ratings
