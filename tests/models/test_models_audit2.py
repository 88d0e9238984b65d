"""Core math of the trunks and towers (a helper's second audit): the shared / task parameter
split of a multi-level PLE, and the KG tower's pairwise loss under the ``softmax`` setting."""

from __future__ import annotations

import pytest
import torch

from kgrec.models import PLE, KGLinkTower, ModelConfig, MultiTaskRecommender

from .conftest import DIM


def _names(module: torch.nn.Module, params) -> set[str]:
    ids = {id(p) for p in params}
    return {name for name, p in module.named_parameters() if id(p) in ids}


@pytest.mark.parametrize("levels", [2, 3])
def test_a_multi_level_ple_task_output_reaches_none_of_another_tasks_parameters(levels) -> None:
    """Task ``b``'s experts below the last level feed the shared gate, so task ``a``'s output
    depends on them: they are shared, not ``b``'s (PCGrad leaves task parameters unprojected)."""
    ple = PLE(4, ["a", "b"], num_levels=levels, num_shared_experts=1, hidden=())
    ple(torch.randn(3, 4))["a"].square().sum().backward()
    assert all(p.grad is None for p in ple.task_parameters("b"))
    assert all(p.grad is not None for p in ple.task_parameters("a"))
    groups = [list(ple.shared_parameters()), list(ple.task_parameters("a")), list(ple.task_parameters("b"))]
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in ple.parameters()}


def test_a_two_level_ple_counts_first_level_task_experts_as_shared() -> None:
    ple = PLE(4, ["a", "b"], num_levels=2, num_shared_experts=1, hidden=())
    # by hand: level 0's task experts feed the shared gate of level 0; the gates of level 0 feed
    # the task's own experts of level 1, which no shared gate reads (level 1 is the last)
    assert _names(ple, ple.task_parameters("b")) == {
        "task_modules.b.experts.1.0.0.weight", "task_modules.b.experts.1.0.0.bias",
        "task_modules.b.gates.0.weight", "task_modules.b.gates.0.bias",
        "task_modules.b.gates.1.weight", "task_modules.b.gates.1.bias",
    }  # fmt: skip
    shared = _names(ple, ple.shared_parameters())
    assert {"task_modules.a.experts.0.0.0.weight", "task_modules.b.experts.0.0.0.weight"} <= shared


def test_a_multi_level_ple_models_task_parameters_get_only_their_own_losses_gradient(sizes, side, batch) -> None:
    config = ModelConfig(dim=DIM, trunk="ple", ple_levels=2, trunk_hidden=(8,), tower_hidden=(8,), text_experts=2,
                         graph_bases=2, tasks=("retrieval", "rating", "like"))  # fmt: skip
    model = MultiTaskRecommender(config, sizes, side)
    model.compute_losses(batch)["rating"].backward()
    assert all(p.grad is None for p in model.task_parameters("like"))
    assert any(p.grad is not None for p in model.task_parameters("rating"))


def test_the_kg_tower_with_the_softmax_loss_refuses_pairwise_scores() -> None:
    """It had returned the margin loss: ``relu(1 - 2 + 0.5) = 0``, not an error."""
    tower = KGLinkTower(2, 4, loss="softmax")
    with pytest.raises(ValueError, match="softmax_loss"):
        tower.loss(torch.tensor([2.0]), torch.tensor([[0.5]]))
    pairwise = KGLinkTower(2, 4, loss="margin")  # by hand: relu(1 - 2 + 0.5) = 0, relu(1 - 0 + 0.5) = 1.5
    assert float(pairwise.loss(torch.tensor([2.0, 0.0]), torch.tensor([[0.5], [0.5]]))) == pytest.approx(0.75)


def test_the_teacher_term_normalises_bf16_scores_in_fp32():
    """Under bf16 autocast the tower's scores are bf16, and ``logsumexp`` (not on autocast's fp32
    list) rounded the normaliser to bf16: near the teacher the gradient was off by 20-40%."""
    from kgrec.models.towers import RetrievalTower

    torch.manual_seed(0)
    teacher = torch.randn(64, 500) * 2
    student = (teacher + 0.05 * torch.randn(64, 500)).bfloat16()  # late training: close to the teacher

    def gradient(scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone().requires_grad_(True)
        RetrievalTower.distillation_loss(scores, teacher, 1.0).backward()
        return scores.grad.float()

    exact = gradient(student.float())  # the same rounded scores, in fp32 throughout
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gradient(student)
    assert (mixed - exact).norm() / exact.norm() < 0.01
