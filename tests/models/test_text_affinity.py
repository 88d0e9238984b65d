"""The like tower's content prior (``model.like_text_affinity``): the cosine of an item's text
to the user's training items', added to the logit with a learned weight."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kgrec.errors import ConfigError
from kgrec.models import ModelConfig, MultiTaskRecommender, RecBatch
from kgrec.models.towers import LikeTower

from .conftest import DIM, N_ITEMS


def _config(**changes) -> ModelConfig:
    base = dict(dim=DIM, trunk_hidden=(16,), tower_hidden=(8,), text_experts=2, graph_bases=2, user_encoder="id+history",
                tasks=("like", "retrieval"), like_text_affinity=True)  # fmt: skip
    base.update(changes)
    return ModelConfig(**base)


def test_affinity_is_the_cosine_of_centred_text_to_the_users_other_training_items(sizes, side) -> None:
    model = MultiTaskRecommender(_config(), sizes, side)
    text = F.normalize(side.text, dim=1)
    c = text - text.mean(0)  # centred unit text vectors
    # user 0 trained on items 0 and 1, user 2 on item 3 alone (conftest's history)
    users, items = torch.tensor([0, 0, 0, 2, 2]), torch.tensor([1, 4, 0, 3, 5])
    got = model.text_affinity(users, items)
    want = [F.cosine_similarity(c[0] + c[1], c[i], dim=0) for i in (1, 4, 0)] + [F.cosine_similarity(c[3], c[i], dim=0) for i in (3, 5)]
    assert torch.allclose(got, torch.stack(want), atol=1e-6)
    own = model.text_affinity(torch.tensor([0, 2]), torch.tensor([1, 3]), own=True)  # training pairs: the item leaves
    assert own[0] == pytest.approx(F.cosine_similarity(c[0], c[1], dim=0).item(), abs=1e-6)
    assert own[1] == 0.0  # user 2 has no other training item


def test_the_like_logit_adds_the_affinity_with_a_learned_weight(sizes, side, batch) -> None:
    torch.manual_seed(0)
    plain = MultiTaskRecommender(_config(like_text_affinity=False), sizes, side)
    torch.manual_seed(0)
    model = MultiTaskRecommender(_config(), sizes, side)  # the same draws: the weight takes none
    model.load_state_dict(plain.state_dict(), strict=False)
    users, items = torch.tensor([0, 1, 3]), torch.tensor([4, 0, 2])
    plain.eval(), model.eval()  # no dropout
    with torch.no_grad():
        logit = torch.logit(model.predict_like(users, items), eps=0)
        base = torch.logit(plain.predict_like(users, items), eps=0)
    assert torch.allclose(logit - base, 10.0 * model.text_affinity(users, items), atol=1e-4)  # e^theta starts at 10
    model.train()
    loss = model.compute_losses(RecBatch(user=batch.user, pos_item=batch.pos_item, rating=batch.rating))["like"]
    loss.backward()
    weight = model.towers["like"].affinity_log_weight
    assert weight.grad is not None and weight.grad != 0 and weight.item() == pytest.approx(math.log(10.0))


def test_a_like_tower_without_affinity_draws_its_weights_as_before(sizes, side) -> None:
    """The weight takes no random draw: a model without it initialises as it always has."""
    torch.manual_seed(3)
    with_affinity = LikeTower(DIM, 4, N_ITEMS, affinity=True)
    torch.manual_seed(3)
    without = LikeTower(DIM, 4, N_ITEMS)
    for name, value in without.state_dict().items():
        assert torch.equal(value, with_affinity.state_dict()[name]), name
    z = torch.randn(2, DIM)
    with pytest.raises(ValueError, match="affinity"):
        with_affinity(z, z)  # built with it: required
    with pytest.raises(ValueError, match="affinity"):
        without(z, z, affinity=torch.zeros(2))


@pytest.mark.parametrize("changes", [dict(tasks=("retrieval",)), dict(use_text=False), dict(user_encoder="id")])
def test_affinity_without_like_text_or_history_is_refused(changes) -> None:
    with pytest.raises(ConfigError, match="like_text_affinity") as raised:
        _config(**changes)
    assert raised.value.key == "model.like_text_affinity"


def test_fitted_defaults_turn_affinity_off_with_the_like_tower(tmp_path) -> None:
    from kgrec.data import load_dataset
    from kgrec.train import fit_defaults
    from tests.conftest import tiny_config, write_atomic

    folder = write_atomic(tmp_path, "clicks", {"inter": "user_id:token|item_id:token\n" + "\n".join(
        f"u{u}|i{(u + k) % 9}" for u in range(6) for k in range(4)), "item": "item_id:token|title:token\n" + "\n".join(
        f"i{i}|Film {i}" for i in range(9))})  # fmt: skip
    config = tiny_config(folder, "model.like_text_affinity=true", "model.use_text=true")
    fitted, notes = fit_defaults(config, load_dataset(folder))
    assert "like" not in fitted.model.tasks and not fitted.model.like_text_affinity
    assert any("like_text_affinity" in note for note in notes)
