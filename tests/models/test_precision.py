"""Mixed precision and devices: bf16 autocast follows fp32, and the GPU gives the CPU's numbers.

The CUDA cases are skipped without a GPU (CI has none); ``scripts/check_gpu.sh`` runs them on
one. The CPU cases check the same autocast path on every machine.
"""

from __future__ import annotations

import copy

import pytest
import torch

from kgrec.models import ModelConfig, MultiTaskRecommender
from kgrec.models._sparse import SparseOperator

from .conftest import DIM

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _config(**changes) -> ModelConfig:
    """Every pathway on (text, graph, history, AutoRec), no dropout, so runs can be compared."""
    base = dict(dim=DIM, trunk_hidden=(16,), tower_hidden=(8,), text_experts=2, graph_bases=2,
                user_encoder="id+history+graph", id_dropout=0.0, text_dropout=0.0, rating_autorec_units=4)  # fmt: skip
    base.update(changes)
    return ModelConfig(**base)


def _flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.float().flatten().cpu() for p in model.parameters() if p.grad is not None])


def test_sparse_products_of_half_precision_inputs_run_in_fp32() -> None:
    op = SparseOperator(torch.tensor([[0, 0, 1, 2], [0, 2, 1, 0]]), torch.tensor([0.5, 0.5, 1.0, 2.0]), (3, 3))
    x = torch.randn(3, 4).bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = op @ x
    assert y.dtype == torch.float32
    assert torch.allclose(y, op.csr.to_dense() @ x.float())
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16


def test_sparse_products_keep_the_input_dtype_outside_autocast() -> None:
    op = SparseOperator(torch.tensor([[0, 1], [1, 0]]), torch.tensor([1.0, 2.0]), (2, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (op @ torch.randn(2, 3).bfloat16()).dtype == torch.float32  # autocast casts it for the next op
    assert (op @ torch.randn(2, 3).bfloat16()).dtype == torch.bfloat16  # a bf16 model's next weights are bf16


def test_a_model_held_in_bf16_trains(sizes, side, batch) -> None:
    """Lightning's ``bf16-true`` precision: weights and inputs in bf16, no autocast."""
    model = MultiTaskRecommender(_config(), sizes, side).to(torch.bfloat16)
    model.text = model.text.bfloat16()
    total, _ = model.loss(batch)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(_flat_grad(model)).all()


@CUDA
def test_predictions_on_the_gpu_equal_the_cpu_ones(sizes, side) -> None:
    cpu = MultiTaskRecommender(_config(), sizes, side).eval()
    gpu = copy.deepcopy(cpu).to("cuda")  # side inputs (graph, text, history, ratings) move with it
    users = torch.arange(sizes.num_users).repeat_interleave(sizes.num_items)
    items = torch.arange(sizes.num_items).repeat(sizes.num_users)
    with torch.no_grad():
        assert torch.allclose(gpu.score_all(torch.arange(sizes.num_users, device="cuda")).cpu(),
                              cpu.score_all(torch.arange(sizes.num_users)), atol=1e-4)  # fmt: skip
        assert torch.allclose(gpu.predict_rating(users.cuda(), items.cuda()).cpu(), cpu.predict_rating(users, items), atol=1e-4)
        assert torch.allclose(gpu.predict_like(users.cuda(), items.cuda()).cpu(), cpu.predict_like(users, items), atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("trunk", ["shared_bottom", "mmoe", "ple"])
@pytest.mark.parametrize(
    ("graph_kind", "retrieval_loss", "kg_score"),
    [("rgcn", "bpr", "distmult"), ("rgcn", "sampled_softmax", "transe"), ("compgcn", "full_softmax", "distmult"),
     ("kgat", "full_softmax", "transe")],
)
def test_bf16_autocast_losses_and_gradients_follow_fp32(
    sizes, side, batch, device, trunk, graph_kind, retrieval_loss, kg_score
) -> None:
    """What Lightning's ``bf16-mixed`` does: forward under autocast, fp32 weights and gradients."""
    config = _config(trunk=trunk, graph_kind=graph_kind, retrieval_loss=retrieval_loss, kg_score=kg_score)
    reference_model = MultiTaskRecommender(config, sizes, side).eval()  # eval: no dropout noise
    model = copy.deepcopy(reference_model).to(device)
    reference = reference_model.compute_losses(batch)
    sum(reference.values()).backward()
    with torch.autocast(device, dtype=torch.bfloat16):
        losses = model.compute_losses(batch.to(device))
    sum(losses.values()).backward()
    assert set(losses) == set(reference)
    for task, value in losses.items():
        assert torch.isfinite(value), task
        assert float(value.detach()) == pytest.approx(float(reference[task].detach()), rel=0.05, abs=0.02), task
    for (name, p), q in zip(model.named_parameters(), reference_model.parameters(), strict=True):
        assert p.dtype == torch.float32, name  # autocast keeps the weights in fp32
        assert (p.grad is None) == (q.grad is None), name
        assert p.grad is None or torch.isfinite(p.grad).all(), name
    similarity = torch.nn.functional.cosine_similarity(_flat_grad(model), _flat_grad(reference_model), dim=0)
    assert similarity > 0.99
