"""Index tensors of any integer dtype (int32 from numpy or a data loader) train as int64 ones do;
float and bool index tensors are refused by name. F.cross_entropy takes int64 targets only, so the
full-softmax retrieval loss and the kg softmax loss raised "expected target dtype to be Long or
Byte, but got Int"."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from kgrec.models import ModelConfig, MultiTaskRecommender
from kgrec.models.towers import KGLinkTower, RetrievalTower

from .conftest import DIM

INDEX_FIELDS = ("user", "pos_item", "neg_items", "kg_head", "kg_rel", "kg_tail", "kg_neg_tail", "shared_items")


def _config(**changes) -> ModelConfig:
    return ModelConfig(**{**dict(dim=DIM, trunk_hidden=(16,), tower_hidden=(8,), text_experts=2, graph_bases=2,
                                 user_encoder="id+history+graph", rating_autorec_units=4), **changes})  # fmt: skip


def _as(batch, dtype):
    return dataclasses.replace(batch, **{f: getattr(batch, f).to(dtype) for f in INDEX_FIELDS if getattr(batch, f) is not None})


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
@pytest.mark.parametrize(("retrieval", "kg", "shared"), [("full_softmax", "softmax", False), ("sampled_softmax", "softplus", False),
                                                         ("sampled_softmax", "margin", True), ("bpr", "softmax", False)])  # fmt: skip
def test_every_loss_takes_any_integer_index_dtype_and_gives_the_int64_values(sizes, side, batch, dtype, retrieval, kg, shared):
    if shared:
        batch = dataclasses.replace(batch, shared_items=torch.tensor([0, 2, 5]))
    model = MultiTaskRecommender(_config(retrieval_loss=retrieval, kg_loss=kg), sizes, side).eval()  # eval: no dropout draw
    expected = model.compute_losses(batch)
    got = model.compute_losses(_as(batch, dtype))  # was: RuntimeError for full_softmax and the kg softmax
    assert set(got) == set(expected) == {"retrieval", "rating", "like", "kg"}
    for task in expected:
        torch.testing.assert_close(got[task], expected[task], msg=task)
    model.loss(_as(batch, dtype))[0].backward()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_float_and_bool_index_tensors_are_refused_by_name(dtype):
    z_u, z_items = torch.randn(3, 4), torch.randn(5, 4)
    pos = torch.tensor([0, 1, 1]).to(dtype)
    with pytest.raises(TypeError, match=rf"pos_items: expected an integer index tensor, got dtype {dtype}"):
        RetrievalTower("full_softmax").loss(z_u, z_items, pos)
    tower = KGLinkTower(2, 4, loss="softmax")
    with pytest.raises(TypeError, match="tail: expected an integer index tensor"):
        tower.softmax_loss(torch.randn(5, 4), torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 3]).to(dtype))
