"""``Recommender.predict`` audit on a cold-item split: items without a training rating get finite
ratings inside the training ratings' range, the same as the run's evaluation gives them; a
repeated id answers twice, in the order given; no item answers an empty list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def cold_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kgrec.train import train
    from tests.conftest import tiny_config

    out = tmp_path_factory.mktemp("runs") / "cold"
    config = tiny_config(clustered_dataset, "train.max_epochs=2", "data.split=cold_item",
                         "model.tasks=[retrieval, rating, like]")  # fmt: skip
    train(config, out)
    return out


def test_items_without_training_ratings_are_predicted_in_the_training_range(cold_run: Path):
    from kgrec.retrieval import Recommender

    rec = Recommender.open(cold_run, predict_only=True)
    data = rec.run.dataset
    trained = np.zeros(data.n_items, bool)
    trained[data.train.item] = True
    cold = np.flatnonzero(~trained)
    assert len(cold) and trained.any()
    low, high = float(data.train.rating.min()), float(data.train.rating.max())  # type: ignore[union-attr]
    assert rec.run.model.towers["rating"].rating_range == (low, high)  # the training part's range only
    user = int(data.train.user[0])
    items = np.concatenate([cold, np.flatnonzero(trained)[:3]])
    predicted = rec.predict(str(data.users[user]), [rec.catalog.tokens[i] for i in items])
    ratings = np.array([p.rating for p in predicted])
    likes = np.array([p.like for p in predicted])
    assert np.isfinite(ratings).all() and ((low <= ratings) & (ratings <= high)).all()
    assert ((likes >= 0) & (likes <= 1)).all()
    model = rec.run.model
    with torch.no_grad():  # as the run's evaluation scores them: one batch, one encoding
        users_t, items_t = torch.full((len(items),), user), torch.as_tensor(items)
        np.testing.assert_allclose(ratings, model.predict_rating(users_t, items_t).numpy(), rtol=1e-6)
        np.testing.assert_allclose(likes, model.predict_like(users_t, items_t).numpy(), rtol=1e-6)


def test_a_repeated_id_answers_twice_in_order_and_no_id_answers_nothing(cold_run: Path):
    from kgrec.retrieval import Recommender

    rec = Recommender.open(cold_run, predict_only=True)
    user = str(rec.run.dataset.users[int(rec.run.dataset.train.user[0])])
    once = rec.predict(user, ["i1", "i2"])
    twice = rec.predict(user, ["i2", "i1", "i2"])
    assert [p.item_id for p in twice] == ["i2", "i1", "i2"]
    def values(p):
        return [p.rating, p.like, p.score]

    for got, want in [(twice[0], once[1]), (twice[2], once[1]), (twice[1], once[0])]:
        assert got.title == want.title and values(got) == pytest.approx(values(want), rel=1e-5)  # float32, any batch
    assert rec.predict(user, []) == []
