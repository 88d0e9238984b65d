"""Numerics and edge cases of the model (a helper's audit): degenerate batches and inputs that
used to give NaN, a crash or a silently wrong loss."""

from __future__ import annotations

import pytest
import torch

from kgrec.errors import ConfigError
from kgrec.models import (
    KGLinkTower,
    ModelConfig,
    ModelSizes,
    MultiTaskRecommender,
    RatingTower,
    RecBatch,
    RetrievalTower,
    SideInputs,
    history_matrix,
)

from .conftest import DIM, N_ITEMS


def _config(**changes) -> ModelConfig:
    base = dict(dim=DIM, trunk_hidden=(16,), tower_hidden=(8,), text_experts=2, graph_bases=2)
    base.update(changes)
    return ModelConfig(**base)


def test_distillation_of_a_batch_without_rows_is_zero_not_nan() -> None:
    scores = torch.zeros(0, 5, requires_grad=True)
    loss = RetrievalTower.distillation_loss(scores, torch.zeros(0, 5), 0.1)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert scores.grad is not None


def test_a_batch_with_no_retrieval_row_and_a_teacher_gives_a_finite_loss(sizes, side, batch) -> None:
    """``retrieval_mask`` all False (e.g. no liked item in the batch) with ``distill_weight`` > 0."""
    model = MultiTaskRecommender(_config(distill_weight=0.5), sizes, side)
    batch.retrieval_mask = torch.zeros(len(batch.user), dtype=torch.bool)
    batch.teacher_scores = torch.randn(len(batch.user), N_ITEMS)
    losses = model.compute_losses(batch)
    assert float(losses["retrieval"].detach()) == 0.0
    total, _ = model.loss(batch)
    assert torch.isfinite(total)
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name


def test_the_rating_loss_refuses_targets_that_would_broadcast() -> None:
    """``(B,)`` predictions against ``(B, 1)`` ratings used to give the mean over all ``B x B``
    pairs (a warning, and a wrong loss) instead of the ``B`` pairs."""
    tower = RatingTower(4)
    pred = torch.tensor([1.0, 2.0, 3.0])
    assert float(tower.loss(pred, torch.tensor([1.0, 2.0, 3.0]))) == 0.0
    with pytest.raises(ValueError, match="rating"):
        tower.loss(pred, torch.tensor([[1.0], [2.0], [3.0]]))


@pytest.mark.parametrize("kg_loss", ["softplus", "softmax"])
def test_transe_on_a_zero_node_vector_has_a_bounded_gradient(kg_loss) -> None:
    """A node vector exactly 0 (below: one from a bias still at its zero init) has no direction;
    normalising it used to send 1e12 x its gradient back (``F.normalize``'s ``1 / eps``)."""
    tower = KGLinkTower(1, 4, score="transe", loss=kg_loss)
    bias = torch.zeros(4, requires_grad=True)
    nodes = torch.cat([torch.randn(3, 4), bias.unsqueeze(0)])  # node 3 is 0
    head, rel, tail = torch.tensor([0]), torch.tensor([0]), torch.tensor([1])
    if kg_loss == "softmax":
        loss = tower.softmax_loss(nodes, head, rel, tail)
    else:
        loss = tower.loss(tower(nodes[head], rel, nodes[tail]), tower(nodes[head], rel, nodes[torch.tensor([[3]])]))
    loss.backward()
    assert torch.isfinite(loss)
    assert float(bias.grad.abs().max()) < 10.0


def test_an_isolated_item_dropped_from_the_graph_does_not_blow_up_the_graph_biases() -> None:
    """``id_dropout_graph`` with TransE: an item with no edges whose ID is dropped has a graph
    vector of exactly 0 at the first step (zero embedding, zero-initialised layer biases); as a
    sampled negative tail it gave the layers' biases gradients of about 1e11."""
    sizes = ModelSizes(num_users=2, num_items=3, num_nodes=4, num_relations=1, text_dim=4)
    users, items = torch.tensor([0, 1]), torch.tensor([1, 2])
    side = SideInputs(
        edge_index=torch.tensor([[1, 2], [3, 3]]), edge_type=torch.zeros(2, dtype=torch.long),  # item 0: no edge
        text=torch.randn(3, 4), history=history_matrix(users, items, 2, 3), warm_items=torch.tensor([False, True, True]),
    )
    config = ModelConfig(dim=4, kg_score="transe", id_dropout=1.0, id_dropout_graph=True, trunk_hidden=(8,), tower_hidden=(8,))
    model = MultiTaskRecommender(config, sizes, side).train()
    batch = RecBatch(user=users, pos_item=items, neg_items=torch.tensor([[2], [1]]), rating=torch.tensor([4.0, 5.0]),
                     kg_head=torch.tensor([1]), kg_rel=torch.tensor([0]), kg_tail=torch.tensor([3]),
                     kg_neg_tail=torch.tensor([[0]]))  # fmt: skip
    enc = model.encode()
    assert float(enc.nodes[0].detach().abs().max()) == 0.0
    model.compute_losses(batch, enc)["kg"].backward()
    for name, p in model.named_parameters():
        assert p.grad is None or float(p.grad.abs().max()) < 100.0, name


@pytest.mark.parametrize(
    ("name", "value"),
    [("kg_margin", float("nan")), ("kg_margin", float("inf")), ("like_threshold", float("nan")),
     ("like_threshold", float("-inf")), ("distill_weight", float("nan")), ("distill_weight", float("inf")),
     ("distill_temperature", float("nan")), ("gradnorm_alpha", float("nan")), ("gradnorm_alpha", float("inf")),
     ("init_std", float("inf")), ("retrieval_temperature", float("inf"))],
)  # fmt: skip
def test_non_finite_settings_are_refused_with_the_field_name(name, value) -> None:
    """``--set model.kg_margin=nan`` reaches the config as a float NaN; it used to train on NaN
    losses (``kg_margin``, ``distill_temperature``), switch a part off silently (``distill_weight``,
    ``gradnorm_alpha``: the weights never moved) or label every pair alike (``like_threshold``)."""
    with pytest.raises(ConfigError, match=f"model.{name}: expected a finite number") as caught:
        ModelConfig(**{name: value})
    assert caught.value.key == f"model.{name}"


def test_an_infinite_loss_weight_is_refused() -> None:
    with pytest.raises(ConfigError, match="model.loss_weights") as caught:
        ModelConfig(loss_weights={"retrieval": 1.0, "rating": float("inf")})
    assert caught.value.key == "model.loss_weights"
