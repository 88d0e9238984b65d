from __future__ import annotations

import math

import pytest
import torch

from kgrec.models import JointLoss, gradnorm_weight_grad, project_conflicting


def test_fixed_mode_is_the_weighted_sum_and_logs_each_task() -> None:
    joint = JointLoss(["rating", "retrieval"], weights={"rating": 0.5})
    total, logs = joint({"rating": torch.tensor(2.0), "retrieval": torch.tensor(3.0)})
    assert float(total) == pytest.approx(0.5 * 2 + 3)
    assert float(logs["loss/rating"]) == 2.0 and float(logs["loss/total"]) == pytest.approx(4.0)
    assert not list(joint.parameters())


def test_missing_tasks_are_skipped_and_unknown_tasks_rejected() -> None:
    joint = JointLoss(["rating", "kg"])
    total, _ = joint({"rating": torch.tensor(1.5)})
    assert float(total) == 1.5
    with pytest.raises(ValueError, match="unknown"):
        joint({"like": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="weights"):
        JointLoss(["rating"], weights={"like": 1.0})


def test_uncertainty_weighting_learns_log_of_each_loss() -> None:
    joint = JointLoss(["a", "b"], mode="uncertainty")
    opt = torch.optim.Adam(joint.parameters(), lr=0.05)
    losses = {"a": torch.tensor(4.0), "b": torch.tensor(0.25)}
    for _ in range(400):
        opt.zero_grad()
        joint(losses)[0].backward()
        opt.step()
    s = joint.log_vars.detach()
    assert s[0] == pytest.approx(math.log(4.0), abs=0.05)  # optimum s_m = log L_m
    assert s[1] == pytest.approx(math.log(0.25), abs=0.05)
    w = joint.effective_weights()
    assert w["b"] > w["a"]


@pytest.mark.parametrize("mode", ["fixed", "uncertainty"])
def test_a_task_weighted_zero_is_logged_but_left_out_of_the_sum(mode) -> None:
    joint = JointLoss(["a", "b"], weights={"b": 0.0}, mode=mode)
    a, b = torch.tensor(2.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    total, logs = joint({"a": a, "b": b})
    total.backward()
    assert float(logs["loss/b"]) == 3.0
    assert b.grad is None  # not even a zero term: b is out of the graph
    if mode == "uncertainty":  # s_b alone would be lowered without bound: it gets no gradient
        assert joint.log_vars.grad.tolist()[1] == 0.0 and joint.log_vars.grad.tolist()[0] != 0.0
        assert "weight/b" not in logs
    else:
        assert float(total.detach()) == 2.0
    only_b, _ = joint({"b": b})
    assert float(only_b.detach()) == 0.0 and only_b.requires_grad  # still a loss Lightning can backpropagate


def test_pcgrad_mode_sums_like_fixed_and_gives_the_weighted_terms() -> None:
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(3.0), "c": torch.tensor(5.0)}
    pcgrad = JointLoss(["a", "b", "c"], weights={"a": 0.5, "c": 0.0}, mode="pcgrad")
    fixed = JointLoss(["a", "b", "c"], weights={"a": 0.5, "c": 0.0})
    assert float(pcgrad(losses)[0]) == float(fixed(losses)[0]) == 4.0
    assert {t: float(v) for t, v in pcgrad.terms(losses).items()} == {"a": 1.0, "b": 3.0}  # c weighs 0
    assert not list(pcgrad.parameters())


def test_pcgrad_projects_conflicting_gradients_by_hand() -> None:
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # g1 . g2 = -1: they conflict
    combined, conflicts = project_conflicting(g)
    # g1 - (-1 / 2) g2 = (0.5, 0.5); g2 - (-1 / 1) g1 = (0, 1)
    assert combined.tolist() == [0.5, 1.5] and conflicts == 2
    agreeing = torch.tensor([[1.0, 2.0], [0.5, 0.0], [0.0, 0.0]])  # no negative dot product (a zero gradient too)
    combined, conflicts = project_conflicting(agreeing)
    assert torch.equal(combined, agreeing.sum(0)) and conflicts == 0
    with pytest.raises(ValueError, match="tasks, parameters"):
        project_conflicting(torch.zeros(3))


def test_pcgrad_with_two_tasks_never_steps_against_either() -> None:
    generator = torch.Generator().manual_seed(0)
    conflicted = against = 0
    for _ in range(200):
        g = torch.randn(2, 5, generator=generator, dtype=torch.float64)
        combined, conflicts = project_conflicting(g, generator)
        conflicted += conflicts > 0
        assert (g @ combined >= -1e-12).all(), (g, combined)
        against += bool((g @ g.sum(0) < 0).any())  # the plain sum can point against one
        if conflicts == 0:
            assert torch.allclose(combined, g.sum(0))
    assert 50 < conflicted < 150 and against > 0  # random directions conflict about half the time


def test_gradnorm_weight_gradient_by_hand() -> None:
    weights, norms = torch.tensor([1.0, 1.0]), torch.tensor([2.0, 1.0])
    # G = (2, 1), mean 1.5; equal training rates: the target is 1.5 for both
    assert gradnorm_weight_grad(weights, norms, torch.tensor([0.5, 0.5]), alpha=1.5).tolist() == [2.0, -1.0]
    # task a's loss falls more slowly (ratio 1 against 0.5): r = (4/3, 2/3), target 1.5 r^1.5 = (2.31, 0.82)
    assert gradnorm_weight_grad(weights, norms, torch.tensor([1.0, 0.5]), alpha=1.5).tolist() == [-2.0, 1.0]
    # alpha = 0 ignores the rates: equal gradient norms are the target
    assert gradnorm_weight_grad(weights, norms, torch.tensor([1.0, 0.5]), alpha=0.0).tolist() == [2.0, -1.0]
    with pytest.raises(ValueError, match="shapes"):
        gradnorm_weight_grad(weights, norms, torch.ones(3), alpha=1.5)


def test_gradnorm_mode_holds_its_weights_constant_in_the_sum_and_keeps_their_total() -> None:
    joint = JointLoss(["a", "b", "c"], weights={"a": 1.0, "b": 0.25, "c": 0.0}, mode="gradnorm")
    assert joint.effective_weights() == {"a": 1.0, "b": 0.25, "c": 0.0}  # starts at the lambdas
    a, b = torch.tensor(2.0, requires_grad=True), torch.tensor(4.0, requires_grad=True)
    total, logs = joint({"a": a, "b": b, "c": torch.tensor(5.0)})
    assert float(total.detach()) == 3.0 and float(logs["weight/b"]) == 0.25
    total.backward()
    assert joint.task_weights.grad is None and float(b.grad) == 0.25  # the model's step: weights constant
    optimizer = torch.optim.SGD(joint.parameters(), lr=0.1)
    joint.balance({"a": 2.0, "b": 4.0}, {"a": 1.0, "b": 1.0})  # G = (1, 0.25): a is above the mean, b below
    assert joint.task_weights.grad.tolist() == [1.0, -1.0, 0.0] and joint.initial_losses[:2].tolist() == [2.0, 4.0]
    optimizer.step()
    joint.renormalize()
    w = joint.effective_weights()
    assert w["c"] == 0.0 and w["a"] + w["b"] == pytest.approx(1.25) and w["b"] > 0.25  # b gained, a lost
    joint.balance({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0})
    assert joint.initial_losses[:2].tolist() == [2.0, 4.0]  # L(0) is the first step's, kept
    with pytest.raises(RuntimeError, match="gradnorm"):
        JointLoss(["a"], mode="fixed").balance({"a": 1.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="alpha"):
        JointLoss(["a"], mode="gradnorm", alpha=-1.0)


def test_gradnorm_brings_two_tasks_gradient_norms_together() -> None:
    """Two regression tasks on a shared layer, one with targets 10 times larger: its gradient
    dwarfs the other's under equal weights; GradNorm (alpha = 0) learns weights that level them."""
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    shared, heads = torch.nn.Linear(8, 8), torch.nn.ModuleList(torch.nn.Linear(8, 1) for _ in range(2))
    targets = [x[:, :1].sin(), 10 * x[:, 1:2].cos()]
    joint = JointLoss(["small", "large"], mode="gradnorm", alpha=0.0)
    optimizer = torch.optim.Adam([*shared.parameters(), *heads.parameters()], lr=1e-3)
    weight_optimizer = torch.optim.Adam(joint.parameters(), lr=0.02)

    def weighted_norms() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        h = torch.relu(shared(x))
        losses = {t: ((head(h) - y) ** 2).mean() for t, head, y in zip(joint.tasks, heads, targets, strict=True)}
        norms = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[t], list(shared.parameters()),
                             retain_graph=True)]).norm() for t in joint.tasks])  # fmt: skip
        return losses, norms

    _, norms = weighted_norms()
    start = norms[1] / norms[0]  # equal weights: G_large / G_small
    for _ in range(300):
        optimizer.zero_grad()
        weight_optimizer.zero_grad()
        losses, norms = weighted_norms()
        joint(losses)[0].backward()
        joint.balance({t: v.detach() for t, v in losses.items()}, dict(zip(joint.tasks, norms, strict=True)))
        optimizer.step()
        weight_optimizer.step()
        joint.renormalize()
    _, norms = weighted_norms()
    w = joint.task_weights.detach()
    end = (w[1] * norms[1]) / (w[0] * norms[0])
    assert start > 5 and 0.7 < end < 1.4, (start, end)
    assert float(w.sum()) == pytest.approx(2.0) and w[0] > w[1]
