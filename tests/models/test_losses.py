from __future__ import annotations

import math

import pytest
import torch

from kgrec.models import JointLoss, project_conflicting


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
