from __future__ import annotations

import pytest
import torch

from kgrec.errors import ConfigError
from kgrec.models import HistoryPrior, ModelConfig, MultiTaskRecommender, RecBatch

from .conftest import DIM, N_ITEMS, N_USERS, TEXT_DIM


def _full_config(**changes) -> ModelConfig:
    base = dict(dim=DIM, trunk_hidden=(16,), tower_hidden=(8,), text_experts=2, graph_bases=2,
                user_encoder="id+history+graph", id_dropout=0.2, graph_dropout=0.1, rating_autorec_units=4)
    base.update(changes)
    return ModelConfig(**base)


@pytest.fixture
def model(sizes, side) -> MultiTaskRecommender:
    return MultiTaskRecommender(_full_config(), sizes, side)


def test_all_towers_give_finite_losses_and_gradients(model, batch) -> None:
    losses = model.compute_losses(batch)
    assert set(losses) == {"retrieval", "rating", "like", "kg"}
    total, logs = model.loss(batch)
    assert torch.isfinite(total) and "loss/kg" in logs
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("trunk", ["shared_bottom", "mmoe", "ple"])
@pytest.mark.parametrize(("graph_kind", "retrieval_loss"), [("rgcn", "sampled_softmax"), ("compgcn", "full_softmax"), ("kgat", "bpr")])
def test_every_trunk_and_graph_kind_trains(sizes, side, batch, trunk, graph_kind, retrieval_loss) -> None:
    model = MultiTaskRecommender(
        _full_config(trunk=trunk, graph_kind=graph_kind, retrieval_loss=retrieval_loss, loss_mode="uncertainty"),
        sizes, side,
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(15):
        opt.zero_grad()
        total, _ = model.loss(batch)
        total.backward()
        opt.step()
        first = float(total.detach()) if first is None else first
    assert float(model.loss(batch)[0].detach()) < first


def test_graph_is_encoded_once_per_step(model, batch) -> None:
    calls = []
    model.graph_encoder.register_forward_hook(lambda *_: calls.append(1))
    model.compute_losses(batch)
    assert len(calls) == 1


def test_score_all_equals_user_vectors_times_item_vectors(model) -> None:
    model.eval()
    with torch.no_grad():
        users = torch.tensor([0, 2, 3])
        enc = model.encode()
        scores = model.score_all(users, encoded=enc)
        expected = model.user_vectors(users, encoded=enc) @ model.item_vectors(encoded=enc).T
        assert scores.shape == (3, N_ITEMS)
        torch.testing.assert_close(scores, expected)
        torch.testing.assert_close(model.score_all(users), scores)  # encode() is deterministic in eval
        assert model.user_vectors().shape == (N_USERS, DIM)


def test_predictions_have_the_right_range(model) -> None:
    model.eval()
    users, items = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    with torch.no_grad():
        rating = model.predict_rating(users, items)
        like = model.predict_like(users, items)
    assert rating.shape == (3,) and ((rating >= 1) & (rating <= 5)).all()
    assert ((like >= 0) & (like <= 1)).all()


def test_cold_item_vectors_need_no_id(model) -> None:
    model.eval()
    text, graph = torch.randn(2, TEXT_DIM), torch.randn(2, DIM)
    with torch.no_grad():
        before = model.cold_item_vectors(text, graph)
        model.item_embedding.weight.normal_()
        after = model.cold_item_vectors(text, graph)
        text_only = model.cold_item_vectors(text)
        new_nodes = model.encode_graph(num_new_nodes=1)
    assert before.shape == (2, DIM) and text_only.shape == (2, DIM)
    torch.testing.assert_close(before, after)
    assert new_nodes.shape[0] == model.sizes.num_nodes + 1


@pytest.mark.parametrize("id_dropout_graph", [False, True])
def test_id_dropout_graph_encodes_dropped_items_from_their_neighbours_only(sizes, side, id_dropout_graph) -> None:
    # Every ID dropped (p = 1), no text: the fused item vector is the item's graph vector.
    config = _full_config(use_text=False, id_dropout=1.0, graph_dropout=0.0, id_dropout_graph=id_dropout_graph)
    model = MultiTaskRecommender(config, sizes, side).train()
    items = model.encode().items  # (I, d)
    n = sizes.num_items
    with torch.no_grad():
        weight = model.graph_encoder.embedding.weight
        as_new = model.graph_encoder(side.edge_index, side.edge_type, x=torch.cat([weight[:n] * 0, weight[n:]]))
        as_known = model.encode_graph()
    torch.testing.assert_close(items, (as_new if id_dropout_graph else as_known)[:n])
    assert not torch.allclose(as_new[:n], as_known[:n])  # the item's own embedding mattered
    items.sum().backward()
    reached = model.graph_encoder.embedding.weight.grad[:n].abs().sum(-1) > 0
    assert reached.any() != id_dropout_graph  # a dropped item's own node embedding learns nothing that step
    model.eval()  # p = 1: the ID embedding (and with id_dropout_graph the own node embedding) never trained, so stays out
    with torch.no_grad():
        torch.testing.assert_close(model.encode().items, items.detach())
        model.item_fusion.id_dropout = model.config.id_dropout = 0.5  # below 1, nothing is dropped outside training
        torch.testing.assert_close(model.encode().items, model.item_fusion(model.item_embedding.weight, graph=as_known[:n]))


def test_id_dropout_private_also_encodes_dropped_items_without_their_private_entities(sizes, side) -> None:
    n = sizes.num_items
    owner = torch.full((sizes.num_nodes,), -1)
    owner[n], owner[n + 2] = 0, 3  # entity nodes n and n + 2 are items 0's and 3's alone
    config = _full_config(use_text=False, id_dropout=1.0, graph_dropout=0.0, id_dropout_graph=True, id_dropout_private=True)
    with pytest.raises(ValueError, match="needs side input 'private_owner'"):
        MultiTaskRecommender(config, sizes, side).train().encode()
    side.private_owner = owner
    model = MultiTaskRecommender(config, sizes, side).train()
    items = model.encode().items  # every ID dropped (p = 1): the items' graph vectors
    with torch.no_grad():
        zeroed = model.graph_encoder.embedding.weight.clone()
        zeroed[: n + 1] = 0
        zeroed[n + 2] = 0
        expected = model.graph_encoder(side.edge_index, side.edge_type, x=zeroed)[:n]
    torch.testing.assert_close(items, expected)
    items.sum().backward()
    reached = model.graph_encoder.embedding.weight.grad.abs().sum(-1) > 0
    assert not reached[: n + 1].any() and not reached[n + 2] and reached[n + 1]  # a shared entity still learns
    with pytest.raises(ConfigError, match="id_dropout_private extends id_dropout_graph"):
        _full_config(id_dropout_private=True)


def test_new_user_vector_matches_a_known_user_with_the_same_history(sizes, side) -> None:
    model = MultiTaskRecommender(_full_config(user_encoder="history"), sizes, side).eval()
    with torch.no_grad():
        enc = model.encode()
        known = model.user_vectors(torch.tensor([1]), enc)  # user 1's training items: 1, 2
        new = model.new_user_vector(enc.items[torch.tensor([1, 2])])
        other = model.new_user_vector(enc.items[torch.tensor([3])])
    torch.testing.assert_close(new, known)
    assert not torch.allclose(other, known)
    with pytest.raises(ValueError, match="history"):
        MultiTaskRecommender(_full_config(user_encoder="id"), sizes, side).new_user_vector(enc.items[:1])


def test_a_user_whose_id_is_dropped_in_training_is_what_a_new_user_gets(sizes, side) -> None:
    model = MultiTaskRecommender(_full_config(user_encoder="id+history", user_id_dropout=1.0), sizes, side).train()
    with torch.no_grad():
        enc = model.encode()
        dropped = model.user_vectors(torch.tensor([1]), enc)  # user 1's training items: 1, 2
        new = model.new_user_vector(enc.items[torch.tensor([1, 2])])
        torch.testing.assert_close(dropped, new)
        model.eval()  # an ID vector dropped with p = 1 never trained: it stays out at inference too
        torch.testing.assert_close(model.user_vectors(torch.tensor([1]), enc), new)
        model.user_encoder.id_dropout = 0.5
        assert not torch.allclose(model.user_vectors(torch.tensor([1]), enc), new)  # below 1, the ID counts at inference


def test_new_users_are_shrunk_toward_the_mean_training_history(sizes, side) -> None:
    model = MultiTaskRecommender(_full_config(user_encoder="id+history"), sizes, side).eval()
    histories = [[0, 1], [1, 2], [3], [4, 5]]  # the side fixture's training items per user
    with torch.no_grad():
        enc = model.encode()
        mean = model.mean_history(enc)
        expected_mean = torch.stack([enc.items[i].mean(0) for i in histories]).mean(0, keepdim=True)
        torch.testing.assert_close(mean, expected_mean)
        # the new user's history part is shrunk toward the mean: (sum + k mean) / (n + k)
        liked = enc.items[torch.tensor([1, 2])]
        prior = HistoryPrior(mean=mean, weight=3.0)
        shrunk = (liked.sum(0, keepdim=True) + 3.0 * mean) / (2 + 3.0)
        expected = model._retrieval().user_vectors(model.user_trunk(shrunk)["retrieval"])
        torch.testing.assert_close(model.new_user_vector(liked, prior), expected)
        plain = model._retrieval().user_vectors(model.user_trunk(liked.mean(0, keepdim=True))["retrieval"])
        torch.testing.assert_close(model.new_user_vector(liked), plain)
        torch.testing.assert_close(model.new_user_vector(liked, HistoryPrior(mean, 0.0)), plain)
        everyone = HistoryPrior(mean=mean, weight=float("inf"))  # the prior is all there is
        torch.testing.assert_close(model.new_user_vector(liked, everyone), model.new_user_vector(enc.items[:1], everyone))
        # batched: one row per user, from the sums and counts of their liked items
        lists = [[1, 2], [0], [3, 4, 5]]
        sums = torch.stack([enc.items[i].sum(0) for i in lists])
        batched = model.new_user_vectors(sums, torch.tensor([len(i) for i in lists]), prior)
        torch.testing.assert_close(batched, torch.cat([model.new_user_vector(enc.items[i], prior) for i in lists]))
        with pytest.raises(ValueError, match="at least one liked item"):
            model.new_user_vectors(sums, torch.tensor([2, 0, 3]))
    with pytest.raises(ValueError, match="no history user part"):
        MultiTaskRecommender(_full_config(user_encoder="id"), sizes, side).mean_history()


def test_caches_built_under_inference_mode_do_not_break_training(model, batch) -> None:
    with torch.inference_mode():
        model.score_all(torch.arange(2))  # builds the graph adjacency and the history operator
    total, _ = model.loss(batch)
    total.backward()  # autograd cannot save inference tensors: they must have been rebuilt
    assert torch.isfinite(total)


@pytest.mark.parametrize("retrieval_loss", ["full_softmax", "sampled_softmax", "bpr"])
def test_a_batch_without_retrieval_rows_gives_a_zero_retrieval_loss(sizes, side, batch, retrieval_loss) -> None:
    model = MultiTaskRecommender(_full_config(retrieval_loss=retrieval_loss), sizes, side)
    batch.retrieval_mask = torch.zeros(len(batch.user), dtype=torch.bool)
    loss = model.compute_losses(batch)["retrieval"]
    assert loss.item() == 0.0 and loss.requires_grad


def test_new_user_vector_needs_a_liked_item(model) -> None:
    with pytest.raises(ValueError, match="at least one liked item"):
        model.new_user_vector(torch.zeros(0, DIM))


def test_bpr_mf_has_only_id_embeddings(sizes, side, batch) -> None:
    model = MultiTaskRecommender(ModelConfig.bpr_mf(dim=DIM), sizes, side)
    names = {n for n, _ in model.named_parameters()}
    assert names == {"item_embedding.weight", "user_encoder.id_embedding.weight"}
    losses = model(batch)
    assert set(losses) == {"retrieval"}
    users = torch.tensor([1, 3])
    torch.testing.assert_close(
        model.score_all(users), model.user_encoder.id_embedding(users) @ model.item_embedding.weight.T
    )


def test_parameter_groups_partition_the_model(model) -> None:
    groups = [list(model.shared_parameters()), list(model.loss_parameters())]
    groups += [list(model.task_parameters(t)) for t in model.config.tasks]
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    assert list(model.task_parameters("kg"))  # relation vectors


def test_like_labels_default_to_the_rating_threshold(model, batch) -> None:
    explicit = RecBatch(**{**batch.__dict__, "like": (batch.rating >= 4).float()})
    model.eval()  # no dropout: two calls agree
    torch.testing.assert_close(model(batch)["like"], model(explicit)["like"])


def test_kg_task_is_skipped_without_triples(model, batch) -> None:
    no_kg = RecBatch(user=batch.user, pos_item=batch.pos_item, neg_items=batch.neg_items, rating=batch.rating)
    assert "kg" not in model(no_kg)


def test_side_inputs_are_not_in_the_state_dict(model, sizes, side) -> None:
    state = model.state_dict()
    assert not any(k in state for k in ("text", "edge_index", "edge_type", "_history_indices", "_ratings_values"))
    clone = MultiTaskRecommender(model.config, sizes)
    clone.load_state_dict(state)
    with pytest.raises(ValueError, match="attach"):
        clone.encode()
    clone.attach(side).eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(clone.item_vectors(), model.item_vectors())
        users, items = torch.tensor([0, 3]), torch.tensor([5, 2])
        torch.testing.assert_close(clone.predict_rating(users, items), model.predict_rating(users, items))


def test_autorec_term_needs_the_training_ratings(sizes, side, batch) -> None:
    side.ratings = None
    model = MultiTaskRecommender(_full_config(), sizes, side)
    with pytest.raises(ValueError, match="side input 'ratings'"):
        model.compute_losses(batch)
    with pytest.raises(ConfigError, match="rating_autorec_units"):
        ModelConfig(rating_autorec_units=-1)


def test_a_text_model_needs_text_vectors(sizes) -> None:
    sizes.text_dim = 0
    with pytest.raises(ConfigError, match="text"):
        MultiTaskRecommender(ModelConfig(), sizes)
