"""Audit of :class:`MultiTaskRecommender`: ranking scores against training scores, ID dropout
against cold items, the history pathway, float64 models, and index checks (expectations
computed here, from the fixtures' training interactions)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kgrec.models import ModelConfig, MultiTaskRecommender, RecBatch, history_matrix

from .conftest import DIM, N_ITEMS, N_USERS, TEXT_DIM

HISTORIES = [[0, 1], [1, 2], [3], [4, 5]]  # the side fixture's training items per user


def _config(**changes) -> ModelConfig:
    base = dict(dim=DIM, trunk_hidden=(16,), tower_hidden=(8,), text_experts=2, graph_bases=2,
                user_encoder="id+history+graph", id_dropout=0.2, rating_autorec_units=4)  # fmt: skip
    base.update(changes)
    return ModelConfig(**base)


# ---------------------------------------------------------------- consistency (checked, fine)
@pytest.mark.parametrize("exclude_target", [False, True])
def test_the_ranking_scores_are_the_training_scores_in_eval(sizes, side, batch, exclude_target) -> None:
    """full_softmax: the loss is the cross-entropy of the scores ``recommend`` ranks by; with
    ``history_exclude_target`` the user's history part drops ``A_ut h_t`` of the target."""
    config = _config(tasks=("retrieval",), history_exclude_target=exclude_target)
    model = MultiTaskRecommender(config, sizes, side).eval()
    with torch.no_grad():
        loss = model.compute_losses(batch)["retrieval"]
        enc = model.encode()
        if not exclude_target:
            scores = model.user_vectors(batch.user, enc) @ model.item_vectors(enc).T
        else:
            h = model.user_encoder.id_embedding(batch.user) + enc.nodes[sizes.user_node_offset + batch.user]
            for b, (u, t) in enumerate(zip(batch.user.tolist(), batch.pos_item.tolist(), strict=True)):
                items = HISTORIES[u]
                h[b] += (enc.items[items].sum(0) - enc.items[t]) / len(items)  # the mean's terms, target left out
            scores = model.user_trunk(h)["retrieval"] @ enc.item_z["retrieval"].T
    torch.testing.assert_close(loss, F.cross_entropy(scores, batch.pos_item))


def test_the_history_part_is_the_mean_of_the_training_items(sizes, side) -> None:
    model = MultiTaskRecommender(_config(user_encoder="history", trunk="identity", id_dropout=0.0), sizes, side).eval()
    with torch.no_grad():
        enc = model.encode()
        expected = torch.stack([enc.item_z["retrieval"][i].mean(0) for i in HISTORIES])
        torch.testing.assert_close(model.user_vectors(None, enc), expected)


@pytest.mark.parametrize("fusion", ["gate", "concat", "sum"])
def test_an_item_whose_id_is_dropped_in_training_is_what_cold_item_vectors_gives(sizes, side, fusion) -> None:
    model = MultiTaskRecommender(_config(id_dropout=0.5, graph_dropout=0.0, fusion=fusion), sizes, side).train()
    model.text_adaptor.eval()  # no text dropout or gate noise, so the two calls compare
    keep = torch.tensor([True, False, True, False, True, True])
    model.item_fusion.id_keep_mask = lambda n, device=None: keep  # this step's draw
    with torch.no_grad():
        enc = model.encode()
        nodes = model.encode_graph()[:N_ITEMS]
        cold = model.cold_item_vectors(model.text[~keep], nodes[~keep])
        torch.testing.assert_close(cold, enc.item_z["retrieval"][~keep])
        model.eval()  # a trained item keeps its ID: item_vectors is its training representation with it
        enc = model.encode()
        with_id = model.item_fusion(model.item_embedding.weight, model._adapted_text(model.text), nodes)
        torch.testing.assert_close(model.item_vectors(enc), model.item_trunk(with_id)["retrieval"])


def test_a_user_without_training_items_gets_finite_vectors_and_losses(sizes, side) -> None:
    users, items = torch.tensor([0, 0, 1, 1, 3, 3]), torch.tensor([0, 1, 1, 2, 4, 5])  # user 2 has none
    side.history = history_matrix(users, items, N_USERS, N_ITEMS)
    model = MultiTaskRecommender(_config(user_encoder="history", trunk="identity"), sizes, side)
    batch = RecBatch(user=torch.tensor([2, 0]), pos_item=torch.tensor([3, 0]), rating=torch.tensor([4.0, 2.0]))
    assert all(torch.isfinite(v) for v in model.compute_losses(batch).values())
    model.eval()
    with torch.no_grad():
        assert (model.user_vectors(torch.tensor([2])) == 0).all()  # an empty mean is 0, not NaN
        assert torch.isfinite(model.mean_history()).all()


def test_every_tensor_of_the_model_moves_with_it(sizes, side) -> None:
    """``.to()`` moves parameters and buffers: no side tensor may sit in a plain attribute."""
    side.private_owner = torch.full((sizes.num_nodes,), -1)
    model = MultiTaskRecommender(_config(), sizes, side)
    assert not [k for k, v in vars(model).items() if isinstance(v, torch.Tensor)]
    buffers = dict(model.named_buffers())
    assert {"text", "edge_index", "_history_values", "_ratings_indices", "_private_nodes"} <= set(buffers)
    assert not [k for k in model.state_dict() if k in buffers]  # data, rebuilt from the run's data


# ---------------------------------------------------------------- float64 models
def test_side_inputs_attached_to_a_float64_model_are_float64(sizes, side, batch) -> None:
    """``model.double()`` then ``attach`` gave float32 text to float64 weights: a dtype error."""
    before = MultiTaskRecommender(_config(), sizes, side).double().eval()  # attached, then cast
    after = MultiTaskRecommender(_config(), sizes).double()
    after.load_state_dict(before.state_dict())
    after.attach(side).eval()  # cast, then attached
    assert after.text.dtype == after._history_values.dtype == torch.float64
    with torch.no_grad():
        torch.testing.assert_close(after.item_vectors(), before.item_vectors())
        assert after.item_vectors().dtype == torch.float64
    assert torch.isfinite(sum(after.compute_losses(batch).values()))


def test_a_float64_model_reads_float32_cold_text_and_keeps_float64(sizes, side) -> None:
    model = MultiTaskRecommender(_config(user_encoder="id+history"), sizes, side).double().eval()
    text = torch.randn(2, TEXT_DIM)  # what a text encoder gives
    with torch.no_grad():
        cold = model.cold_item_vectors(text)
        assert cold.dtype == torch.float64
        torch.testing.assert_close(cold, model.cold_item_vectors(text.double()))
        assert model.mean_history().dtype == torch.float64  # was cut to float32


def test_mean_history_without_any_training_item_is_refused(sizes, side) -> None:
    empty = torch.zeros(0, dtype=torch.long)
    side.history = history_matrix(empty, empty, N_USERS, N_ITEMS)
    model = MultiTaskRecommender(_config(user_encoder="id+history"), sizes, side).eval()
    with torch.no_grad(), pytest.raises(ValueError, match="no user has a training item"):
        model.mean_history()  # was a NaN prior, and NaN new-user vectors


# ---------------------------------------------------------------- index checks
def _history_model(sizes, side) -> MultiTaskRecommender:
    """No ID embedding and no tower biases: nothing that would reject a negative index itself."""
    return MultiTaskRecommender(_config(user_encoder="history", tower_biases=False), sizes, side).eval()


_USER_CASES = [(-1, 0), (N_USERS, 0)]
_PAIR_CASES = [*_USER_CASES, (0, -1), (0, N_ITEMS)]


@pytest.mark.parametrize(
    ("method", "user", "item"),
    [(m, u, i) for m in ("user_vectors", "score_all") for u, i in _USER_CASES]
    + [(m, u, i) for m in ("predict_rating", "predict_like") for u, i in _PAIR_CASES],
)
def test_inference_refuses_out_of_range_indices(sizes, side, method, user, item) -> None:
    """``-1`` silently read the last user's (item's) vector; one past the end was a bare IndexError."""
    model = _history_model(sizes, side)
    users, items = torch.tensor([0, user]), torch.tensor([1, item])
    args = (users,) if method in ("user_vectors", "score_all") else (users, items)
    with torch.no_grad(), pytest.raises(ValueError, match=r"(users|items): index out of range"):
        getattr(model, method)(*args)


def test_inference_refuses_a_mask_or_float_indices(sizes, side) -> None:
    model = _history_model(sizes, side)
    with torch.no_grad():
        with pytest.raises(TypeError, match="users"):
            model.user_vectors(torch.tensor([True, False, False, True]))  # was read as a row mask
        with pytest.raises(TypeError, match="items"):
            model.predict_rating(torch.tensor([0]), torch.tensor([1.0]))
        users = torch.tensor([0, 3], dtype=torch.int32)  # any integer dtype is fine
        torch.testing.assert_close(model.predict_like(users, users), model.predict_like(users.long(), users.long()))


@pytest.mark.parametrize(
    ("field", "value"),
    [("user", [0, -1]), ("pos_item", [N_ITEMS, 0]), ("neg_items", [[0, -2], [1, 2]]), ("kg_tail", [-1, 6]),
     ("kg_rel", [0, 9])],
)
def test_training_refuses_out_of_range_batch_indices(sizes, side, field, value) -> None:
    """A negative negative (or KG tail) trained silently on the catalogue's last item (node)."""
    model = MultiTaskRecommender(_config(user_encoder="history", tower_biases=False, retrieval_loss="bpr"), sizes, side)
    batch = RecBatch(
        user=torch.tensor([0, 1]), pos_item=torch.tensor([0, 1]), neg_items=torch.tensor([[2, 3], [4, 5]]),
        rating=torch.tensor([4.0, 3.0]), kg_head=torch.tensor([0, 1]), kg_rel=torch.tensor([0, 1]),
        kg_tail=torch.tensor([6, 7]), kg_neg_tail=torch.tensor([[7], [8]]),
    )
    model.compute_losses(batch)  # in range: fine
    setattr(batch, field, torch.tensor(value))
    with pytest.raises(ValueError, match=rf"batch\.{field}: index out of range"):
        model.compute_losses(batch)


def test_private_owner_must_name_items(sizes, side) -> None:
    owner = torch.full((sizes.num_nodes,), -1)
    owner[N_ITEMS] = N_ITEMS  # not an item
    side.private_owner = owner
    with pytest.raises(ValueError, match="side.private_owner: index out of range"):
        MultiTaskRecommender(_config(), sizes, side)
