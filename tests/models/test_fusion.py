from __future__ import annotations

import pytest
import torch

from kgrec.models import ItemFusion, MoEAdaptor, UserEncoder, history_matrix
from kgrec.models._sparse import SparseOperator


def test_moe_adaptor_maps_text_to_dim_with_finite_gradients() -> None:
    adaptor = MoEAdaptor(16, 8, num_experts=3)
    out = adaptor(torch.randn(5, 16))
    assert out.shape == (5, 8)
    out.square().sum().backward()
    for name, p in adaptor.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    adaptor.eval()
    x = torch.randn(5, 16)
    torch.testing.assert_close(adaptor(x), adaptor(x))  # no noise / dropout in eval
    torch.testing.assert_close(adaptor.gates(x).sum(-1), torch.ones(5))


@pytest.mark.parametrize("kind", ["gate", "concat", "sum"])
def test_fusion_with_id_dropout_one_ignores_the_id_embedding(kind) -> None:
    fusion = ItemFusion(8, kind=kind, id_dropout=1.0).train()
    text, graph = torch.randn(5, 8), torch.randn(5, 8)
    id_emb = torch.randn(5, 8, requires_grad=True)
    out = fusion(id_emb, text, graph)
    assert out.shape == (5, 8)
    torch.testing.assert_close(out, fusion(torch.randn(5, 8) * 100, text, graph))
    out.sum().backward()
    assert id_emb.grad is None or (id_emb.grad == 0).all()


@pytest.mark.parametrize("kind", ["gate", "concat", "sum"])
def test_an_id_dropped_with_probability_one_stays_out_after_training(kind) -> None:
    """At p = 1 the ID embedding never gets a gradient; after training it entered the fusion at its
    random start (the gate's ID logit never learned down), so an untrained vector shaped every item."""
    fusion = ItemFusion(8, kind=kind, id_dropout=1.0).eval()
    text, graph = torch.randn(5, 8), torch.randn(5, 8)
    torch.testing.assert_close(fusion(torch.randn(5, 8), text, graph), fusion(torch.randn(5, 8) * 100, text, graph))
    assert not fusion.id_keep_mask(5).any()
    below = ItemFusion(8, kind=kind, id_dropout=0.99).eval()  # below 1, every ID counts outside training
    assert below.id_keep_mask(5).all()
    assert not torch.allclose(below(torch.randn(5, 8), text, graph), below(torch.randn(5, 8) * 100, text, graph))
    users = UserEncoder(3, 8, parts=("id", "history"), id_dropout=1.0).eval()
    items = torch.randn(4, 8)
    history = SparseOperator.from_sparse(history_matrix(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 3]), 3, 4))
    before = users(None, item_vectors=items, history=history)
    with torch.no_grad():
        users.id_embedding.weight.mul_(100)
    torch.testing.assert_close(users(None, item_vectors=items, history=history), before)


@pytest.mark.parametrize("kind", ["gate", "concat", "sum"])
def test_cold_items_get_vectors_without_an_id(kind) -> None:
    fusion = ItemFusion(8, kind=kind).eval()
    text, graph = torch.randn(4, 8), torch.randn(4, 8)
    cold = torch.tensor([True, False, True, False])
    a = fusion(torch.randn(4, 8), text, graph, id_mask=~cold)
    b = fusion(torch.randn(4, 8), text, graph, id_mask=~cold)
    torch.testing.assert_close(a[cold], b[cold])
    torch.testing.assert_close(fusion(None, text, graph)[cold], a[cold])
    assert not torch.allclose(a[~cold], b[~cold])


def test_gate_weights_sum_to_one_over_available_modalities() -> None:
    fusion = ItemFusion(8, kind="gate")
    with torch.no_grad():
        fusion.gate.weight.normal_()
    alpha = fusion.gate_weights(torch.randn(3, 8), torch.randn(3, 8), None, id_mask=torch.tensor([1, 0, 1]).bool())
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3))
    assert alpha[1, 0] == 0 and (alpha[:, 2] == 0).all()  # no id for item 1, no graph at all


def test_single_modality_fusion_is_the_identity() -> None:
    fusion = ItemFusion(8, modalities=("id",))
    x = torch.randn(3, 8)
    assert fusion(x) is x
    assert not list(fusion.parameters())
    with pytest.raises(ValueError, match="id_dropout"):
        ItemFusion(8, modalities=("id",), id_dropout=0.5)


def test_history_matrix_mean_rows_sum_to_one() -> None:
    a = history_matrix(torch.tensor([0, 0, 1, 0]), torch.tensor([1, 2, 2, 1]), 3, 4).to_dense()
    torch.testing.assert_close(a.sum(1), torch.tensor([1.0, 1.0, 0.0]))  # duplicate (0, 1) counted once
    sym = history_matrix(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), 3, 4, norm="sym").to_dense()
    assert sym[0, 2] == pytest.approx(1 / 2)


def test_user_encoder_history_excludes_the_target_item() -> None:
    users, items = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 2, 2])
    hist = SparseOperator.from_sparse(history_matrix(users, items, 2, 3))
    enc = UserEncoder(2, 4, parts=("id", "history"))
    item_vecs = torch.randn(3, 4)
    out = enc(torch.tensor([0, 1]), item_vectors=item_vecs, history=hist, exclude_items=torch.tensor([1, 0]))
    e = enc.id_embedding.weight
    torch.testing.assert_close(out[0], e[0] + (item_vecs[0] + item_vecs[2]) / 3)  # item 1 removed
    torch.testing.assert_close(out[1], e[1] + item_vecs[2])  # item 0 not in user 1's history
    assert enc(None, item_vectors=item_vecs, history=hist).shape == (2, 4)


def test_user_encoder_id_dropout_drops_whole_id_vectors_in_training_only() -> None:
    torch.manual_seed(0)
    hist = SparseOperator.from_sparse(history_matrix(torch.arange(400), torch.arange(400) % 3, 400, 3))
    enc = UserEncoder(400, 4, parts=("id", "history"), id_dropout=0.25)
    item_vecs = torch.randn(3, 4)
    agg = item_vecs[torch.arange(400) % 3]
    out = enc(None, item_vectors=item_vecs, history=hist)
    e = enc.id_embedding.weight
    dropped = torch.isclose(out, agg).all(1)
    kept = torch.isclose(out, e + agg).all(1)
    assert (dropped ^ kept).all()  # each row loses its whole ID vector or none of it
    assert 0.15 < dropped.float().mean() < 0.35  # about p of the rows
    out[dropped].sum().backward()  # a dropped ID gets no gradient
    assert enc.id_embedding.weight.grad[dropped].abs().sum() == 0
    enc.eval()
    torch.testing.assert_close(enc(None, item_vectors=item_vecs, history=hist), e + agg)  # never at inference
    with pytest.raises(ValueError, match="needs the 'id' part and another"):
        UserEncoder(2, 4, parts=("id",), id_dropout=0.1)
    with pytest.raises(ValueError, match="probability"):
        UserEncoder(2, 4, parts=("id", "history"), id_dropout=1.5)


def test_user_encoder_features_part_is_the_mean_of_the_users_feature_vectors() -> None:
    features = SparseOperator.from_sparse(history_matrix(torch.tensor([0, 0, 1]), torch.tensor([0, 2, 2]), 3, 3))
    enc = UserEncoder(3, 4, parts=("id", "features"), num_features=3)
    f, e = enc.feature_embedding.weight, enc.id_embedding.weight
    out = enc(torch.tensor([0, 1, 2]), features=features)
    torch.testing.assert_close(out[0], e[0] + (f[0] + f[2]) / 2)
    torch.testing.assert_close(out[1], e[1] + f[2])
    torch.testing.assert_close(out[2], e[2])  # no feature tokens: the ID alone
    out[1].sum().backward()
    assert enc.feature_embedding.weight.grad[2].abs().sum() > 0 and enc.feature_embedding.weight.grad[0].abs().sum() == 0
    with pytest.raises(ValueError, match="needs num_features >= 1"):
        UserEncoder(3, 4, parts=("features",))


def test_user_encoder_history_gradient_reaches_item_vectors() -> None:
    hist = SparseOperator.from_sparse(history_matrix(torch.tensor([0, 1]), torch.tensor([1, 2]), 2, 3))
    enc = UserEncoder(2, 4, parts=("history", "graph"))
    item_vecs = torch.randn(3, 4, requires_grad=True)
    out = enc(torch.tensor([1]), item_vectors=item_vecs, history=hist, graph_vectors=torch.zeros(2, 4))
    out.sum().backward()
    torch.testing.assert_close(item_vecs.grad.sum(1), torch.tensor([0.0, 0.0, 4.0]))
    assert not list(enc.parameters())
