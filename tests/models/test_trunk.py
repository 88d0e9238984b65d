from __future__ import annotations

import pytest
import torch

from kgrec.models import PLE, MMoE, SharedBottom, build_trunk

TASKS = ["retrieval", "rating", "like"]
KINDS = ["identity", "shared_bottom", "mmoe", "ple"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_trunk_kind_returns_every_task(kind) -> None:
    trunk = build_trunk(kind, 8, TASKS, hidden=(16,), num_experts=3, num_levels=2)
    out = trunk(torch.randn(5, 8))
    assert set(out) == set(TASKS)
    assert all(z.shape == (5, 8) for z in out.values())


@pytest.mark.parametrize("kind", KINDS)
def test_shared_and_task_parameters_partition_the_trunk(kind) -> None:
    trunk = build_trunk(kind, 8, TASKS, hidden=(16,), num_levels=2)
    groups = [list(trunk.shared_parameters())] + [list(trunk.task_parameters(t)) for t in TASKS]
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids))  # disjoint
    assert set(ids) == {id(p) for p in trunk.parameters()}  # complete
    if kind != "identity":
        assert all(groups), "every group of a learned trunk has parameters"


@pytest.mark.parametrize("kind", ["shared_bottom", "mmoe", "ple"])
def test_trunk_gradients_are_finite_and_tasks_own_their_parameters(kind) -> None:
    trunk = build_trunk(kind, 8, TASKS, hidden=(16,), dropout=0.1)
    trunk(torch.randn(5, 8))["rating"].square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trunk.shared_parameters())
    assert all(p.grad is not None for p in trunk.task_parameters("rating"))
    assert all(p.grad is None for p in trunk.task_parameters("like"))


def test_ple_levels_and_experts_are_configurable() -> None:
    ple = PLE(8, TASKS, num_levels=3, num_shared_experts=1, num_task_experts=2, hidden=())
    assert len(ple.shared.experts) == 3 and len(ple.shared.gates) == 2  # no shared gate on the last level
    assert len(ple.task_modules["like"].experts[0]) == 2
    assert ple.task_modules["like"].gates[0].out_features == 3
    assert ple(torch.randn(2, 8))["like"].shape == (2, 8)


def test_trunk_without_residual_can_change_width() -> None:
    out = MMoE(8, TASKS, out_dim=4, residual=False)(torch.randn(3, 8))
    assert out["like"].shape == (3, 4)
    with pytest.raises(ValueError, match="residual"):
        SharedBottom(8, TASKS, out_dim=4)


def test_build_trunk_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="kind"):
        build_trunk("moe", 8, TASKS)  # type: ignore[arg-type]
