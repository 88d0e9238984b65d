from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.data import SplitConfig, load_dataset
from kgrec.errors import RetrievalError
from kgrec.models import HistoryPrior
from kgrec.retrieval import Recommender
from kgrec.retrieval.new_users import choose_history_prior, simulate_new_users


def _pairs(users: np.ndarray, items: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(users.tolist(), items.tolist(), strict=True))


def test_simulated_new_users_tell_some_training_items_and_are_judged_on_their_valid_items(clustered_dataset: Path):
    ds = load_dataset(clustered_dataset, SplitConfig(seed=0))
    sim = simulate_new_users(ds, seed=0)
    np.testing.assert_array_equal(sim.users, np.intersect1d(ds.train.user, ds.valid.user))
    for row, user in enumerate(sim.users):
        trained = ds.train.item[ds.train.user == user]
        told = sim.given.item[sim.given.user == row]
        assert 1 <= len(told) == len(set(told)) <= len(trained) and set(told) <= set(trained)
        assert sorted(sim.exclude.item[sim.exclude.user == row]) == sorted(trained)
        assert sorted(sim.target.item[sim.target.user == row]) == sorted(ds.valid.item[ds.valid.user == user])
    told_counts = np.bincount(sim.given.user)
    assert told_counts.min() == 1 and told_counts.max() > 5  # log-uniform: one item up to most of a history
    test_pairs = _pairs(ds.test.user, ds.test.item)
    for part in (sim.given, sim.target):
        assert not _pairs(sim.users[part.user], part.item) & test_pairs  # the test split is never read
    few = simulate_new_users(ds, max_users=5, seed=1)
    assert len(few.users) == 5 and set(few.users) <= set(sim.users) and few.given.user.max() == 4


def _ndcg_at_10(scores: np.ndarray, relevant: set[int]) -> float:
    top = np.argsort(-scores, kind="stable")[:10]
    dcg = sum(1 / np.log2(rank + 2) for rank, item in enumerate(top) if item in relevant)
    return dcg / sum(1 / np.log2(rank + 2) for rank in range(min(len(relevant), 10)))


def test_the_prior_weight_is_the_one_under_which_simulated_new_users_rank_best(text_run: Path):
    rec = Recommender.open(text_run)
    model, ds = rec.run.model, rec.run.dataset
    weights = (0.0, 2.0, 8.0, float("inf"))
    choice = choose_history_prior(model, ds, weights=weights, seed=3)
    sim = simulate_new_users(ds, seed=3)
    with torch.no_grad():
        encoded = model.encode()
        items = model.item_vectors(encoded).numpy()
        for weight in weights:  # one user at a time, NDCG@10 by hand
            prior = HistoryPrior(model.mean_history(encoded), weight)
            ndcg = []
            for row in range(len(sim.users)):
                told = torch.as_tensor(sim.given.item[sim.given.user == row])
                scores = model.new_user_vector(encoded.items[told], prior)[0].numpy() @ items.T
                scores[sim.exclude.item[sim.exclude.user == row]] = -np.inf
                ndcg.append(_ndcg_at_10(scores, set(sim.target.item[sim.target.user == row].tolist())))
            assert choice.ndcg[weight] == pytest.approx(float(np.mean(ndcg)), abs=1e-5)
    assert len(set(choice.ndcg.values())) > 1  # the weights rank differently
    assert choice.prior.weight == max(weights, key=lambda w: (choice.ndcg[w], -w))
    assert choice.users == len(sim.users)
    torch.testing.assert_close(choice.prior.mean, model.mean_history(encoded))


def test_recommend_liked_uses_the_prior_chosen_on_valid(text_run: Path):
    rec = Recommender.open(text_run)
    liked = ["i3", "i7"]
    choice = rec.new_user_prior()
    assert choice.prior.weight == choose_history_prior(rec.run.model, rec.run.dataset).prior.weight
    with torch.no_grad():
        history = rec.run.model.encode().items[[rec.catalog.position(t) for t in liked]]
        expected = rec.run.model.new_user_vector(history, choice.prior)[0].numpy()
    np.testing.assert_allclose(rec.new_user_vector(liked=liked), expected, rtol=1e-5, atol=1e-6)
    id_only = Recommender.open(text_run)
    id_only.run.model.config.user_encoder = "id"  # new users are then folded in
    with pytest.raises(RetrievalError, match="no history part"):
        id_only.new_user_prior()
