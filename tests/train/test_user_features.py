"""The ``features`` user part: user columns of NAME.user through the model, saved and loaded."""

import shutil

import numpy as np
import pytest

from kgrec.errors import ConfigError
from kgrec.train import prepare, train
from kgrec.train.saved import evaluate_run
from tests.conftest import tiny_config

FEATURES_ONLY = ["model.user_encoder=features", "model.tasks=[retrieval]", "train.max_epochs=8", "train.patience=100"]


@pytest.fixture
def with_users(clustered_dataset, tmp_path):
    """The clustered dataset with ``clusters.user``: each user's taste (its cluster) and a coin flip."""
    root = tmp_path / "clusters"
    shutil.copytree(clustered_dataset, root)
    rng = np.random.default_rng(1)
    rows = ["user_id:token\ttaste:token\tcoin:token"]
    rows += [f"u{u}\tcluster{u % 4}\t{rng.choice(['heads', 'tails'])}" for u in range(40)]
    (root / "clusters.user").write_text("\n".join(rows) + "\n")
    return root


def test_users_known_only_by_their_features_are_ranked_by_them(with_users, tmp_path):
    taste = train(tiny_config(with_users, *FEATURES_ONLY, "model.user_features=[taste]"), tmp_path / "taste")
    coin = train(tiny_config(with_users, *FEATURES_ONLY, "model.user_features=[coin]"), tmp_path / "coin")
    # a user's cluster says what they like; a coin flip does not
    assert taste["test"]["ndcg@10"] > coin["test"]["ndcg@10"] + 0.2


def test_a_run_with_user_features_loads_back_to_the_same_metrics(with_users, tmp_path):
    metrics = train(tiny_config(with_users, "model.user_encoder=id+history+features"), tmp_path / "run")
    again = evaluate_run(tmp_path / "run")
    assert again["test"]["ndcg@10"] == pytest.approx(metrics["test"]["ndcg@10"], abs=1e-6)


def test_features_without_a_user_file_or_column_are_refused(clustered_dataset, with_users):
    with pytest.raises(ConfigError, match=r"has 'features' but clusters has no user columns \(no clusters.user"):
        prepare(tiny_config(clustered_dataset, "model.user_encoder=id+features"), progress=False)
    with pytest.raises(ConfigError, match=r"model.user_features: clusters.user has no column 'age'"):
        prepare(tiny_config(with_users, "model.user_encoder=id+features", "model.user_features=[age]"), progress=False)
