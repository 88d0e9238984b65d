"""The rating baselines (mean rating, user + item biases) against their definitions; their
shrinkage is chosen on valid; `kgrec eval --baselines` sets them beside a run's rating tower."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kgrec.baselines import BiasBaseline, rating_reference, tune_biases
from kgrec.data import Dataset, Interactions
from kgrec.eval import mae, rmse


def rated(users: list[int], items: list[int], ratings: list[float]) -> Interactions:
    return Interactions(user=np.array(users, dtype=np.int64), item=np.array(items, dtype=np.int64),
                        rating=np.array(ratings, dtype=np.float32))  # fmt: skip


def dataset(train: Interactions, valid: Interactions, test: Interactions, n_users: int, n_items: int) -> Dataset:
    return Dataset(
        name="tiny",
        path=None,  # type: ignore[arg-type]
        users=np.array([f"u{u}" for u in range(n_users)], dtype=object),
        items=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        train=train,
        valid=valid,
        test=test,
        split="given",
    )


class _Untouchable:
    def __getattr__(self, name: str):
        raise AssertionError(f"the shrinkage was chosen reading the test part (.{name})")


# ratings 5, 3, 4, 2: mu = 3.5; user 2 and item 3 have none
TRAIN = rated([0, 0, 1, 1], [0, 1, 0, 2], [5, 3, 4, 2])


def test_one_round_is_korens_formulas_by_hand():
    model = BiasBaseline(reg=1.0, rounds=1).fit(TRAIN, n_users=3, n_items=4)
    assert model.mean == 3.5 and model.range == (2.0, 5.0)
    # b_i = sum_u (r_ui - mu) / (1 + |R(i)|): i0 (1.5 + 0.5) / 3, i1 -0.5 / 2, i2 -1.5 / 2, i3 unrated
    np.testing.assert_allclose(model.item_bias, [2 / 3, -0.25, -0.75, 0.0])
    # b_u = sum_i (r_ui - mu - b_i) / (1 + |R(u)|): u0 ((5-3.5-2/3) + (3-3.5+0.25)) / 3, u1 ((4-3.5-2/3) + (2-3.5+0.75)) / 3
    np.testing.assert_allclose(model.user_bias, [(5 / 6 - 1 / 4) / 3, (-1 / 6 - 3 / 4) / 3, 0.0])
    b_u0 = (5 / 6 - 1 / 4) / 3
    predicted = model.predict(np.array([0, 0, 2, 2]), np.array([0, 3, 3, 1]))
    np.testing.assert_allclose(predicted, [3.5 + b_u0 + 2 / 3, 3.5 + b_u0, 3.5, 3.25])  # unknown user / item: bias 0
    scores = model.score(torch.tensor([0, 2]))
    assert scores.shape == (2, 4) and scores.dtype == torch.float32
    np.testing.assert_allclose(scores[1].numpy(), 3.5 + model.item_bias, rtol=1e-6)


def test_more_rounds_reach_the_regularised_least_squares_fit_and_predictions_are_clamped():
    rng = np.random.default_rng(0)
    key = rng.choice(8 * 6, 30, replace=False)
    train = rated((key // 6).tolist(), (key % 6).tolist(), rng.integers(1, 6, 30).tolist())
    model = BiasBaseline(reg=2.0, rounds=500).fit(train, n_users=8, n_items=6)
    mu, r = model.mean, train.rating.astype(np.float64)
    assert model.user_bias is not None and model.item_bias is not None
    residual = r - mu - model.user_bias[train.user] - model.item_bias[train.item]
    # the gradient of sum (r - mu - b_u - b_i)^2 + reg (|b_u|^2 + |b_i|^2) vanishes
    np.testing.assert_allclose(np.bincount(train.item, residual, 6), 2.0 * model.item_bias, atol=1e-8)
    np.testing.assert_allclose(np.bincount(train.user, residual, 8), 2.0 * model.user_bias, atol=1e-8)
    # user 0 gives 5 to an item user 1 gives 1, user 1 gives 5 to item 0: at reg 0, mu = 11/3,
    # b_i0 = 4/3, b_u0 = 2, so user 0 on item 0 would be 7 without the clamp to [1, 5]
    high = rated([0, 1, 1], [1, 1, 0], [5, 1, 5])
    zero = BiasBaseline(reg=0.0, rounds=1).fit(high, n_users=2, n_items=2)
    assert zero.mean + zero.user_bias[0] + zero.item_bias[0] == pytest.approx(7.0)  # type: ignore[index]
    assert zero.predict(np.array([0]), np.array([0])).tolist() == [5.0]


@pytest.mark.parametrize(("reg", "rounds"), [(-1.0, 1), (float("nan"), 1), (float("inf"), 1), (1.0, 0)])
def test_a_negative_or_non_finite_shrinkage_or_no_round_is_refused(reg, rounds):
    with pytest.raises(ValueError, match="expected"):
        BiasBaseline(reg, rounds)


def _disagreeing() -> Dataset:
    """Valid repeats the training ratings (the unshrunk fit, lambda = 0, is best), test asks for
    the mean on every pair (the most shrunk, lambda = 100, is best)."""
    rng = np.random.default_rng(1)
    key = rng.choice(6 * 5, 20, replace=False)
    train = rated((key // 5).tolist(), (key % 5).tolist(), rng.integers(1, 6, 20).tolist())
    test = rated([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 0], [float(train.rating.mean())] * 6)  # type: ignore[union-attr]
    return dataset(train, train, test, n_users=6, n_items=5)


def test_the_shrinkage_is_chosen_on_valid_without_reading_test():
    ds = _disagreeing()
    test = ds.test
    ds.test = _Untouchable()  # type: ignore[assignment]
    tuned = tune_biases(ds, (0.0, 100.0))
    assert tuned.best == 0.0 and tuned.metric == "rmse" and list(tuned.valid) == [0.0, 100.0]
    assert tuned.valid[0.0]["rmse"] < tuned.valid[100.0]["rmse"]
    ds.test = test
    on_test = {reg: rmse(BiasBaseline(reg).fit(ds.train, 6, 5).predict(test.user, test.item), test.rating) for reg in (0.0, 100.0)}
    assert on_test[100.0] < on_test[0.0]  # test would have chosen the other value
    rows = rating_reference(ds, "test", grid=(0.0, 100.0))
    assert list(rows) == ["mean rating", "user + item biases (lambda=0, chosen on valid)"]
    assert rows["user + item biases (lambda=0, chosen on valid)"]["rmse"] == pytest.approx(on_test[0.0])
    assert rows["mean rating"] == {"rmse": pytest.approx(0.0, abs=1e-6), "mae": pytest.approx(0.0, abs=1e-6)}


def test_the_reference_scores_the_pairs_the_run_scores_and_needs_ratings():
    # user 2 has no training rating: the run's evaluation leaves its test pairs out, and so do the baselines
    test = rated([0, 1, 2, 0], [2, 3, 0, 3], [4, 2, 1, 5])
    ds = dataset(TRAIN, rated([], [], []), test, n_users=3, n_items=4)
    rows = rating_reference(ds, "test")
    model = BiasBaseline(BiasBaseline.DEFAULT_REG).fit(TRAIN, 3, 4)  # no valid ratings: the default shrinkage
    kept = np.array([0, 1, 3])
    predicted = model.predict(test.user[kept], test.item[kept])
    assert rows["user + item biases (lambda=25, default: no valid ratings to choose on)"] == {
        "rmse": pytest.approx(rmse(predicted, test.rating[kept])), "mae": pytest.approx(mae(predicted, test.rating[kept]))}  # fmt: skip
    assert rows["mean rating"]["mae"] == pytest.approx(np.abs(3.5 - np.array([4, 2, 5])).mean())
    implicit = dataset(Interactions(TRAIN.user, TRAIN.item), rated([], [], []), Interactions(test.user, test.item), 3, 4)
    assert rating_reference(implicit) == {}


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_eval_baselines_set_the_rating_baselines_beside_a_rating_tower_only(clustered_dataset, tmp_path, capsys, one_thread):
    from kgrec.cli.main import main
    from kgrec.train import train
    from tests.conftest import tiny_config

    for tasks in ("[retrieval,rating]", "[retrieval]"):
        train(tiny_config(clustered_dataset, "train.max_epochs=1", f"model.tasks={tasks}"), tmp_path / tasks)
    capsys.readouterr()
    rating_run = tmp_path / "[retrieval,rating]"
    assert main(["eval", str(rating_run), "--baselines", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    rows = metrics["rating_baselines"]
    names = list(rows)
    assert names[0] == "mean rating" and names[1].startswith("user + item biases (lambda=") and len(names) == 2
    assert names[1].endswith(", chosen on valid)") and set(rows[names[1]]) == {"rmse", "mae"}
    assert main(["eval", str(rating_run), "--baselines"]) == 0
    out = capsys.readouterr().out
    table = out.split("test ratings (same split)")[1].split("test (same split)")[0].strip().splitlines()
    assert table[0].split() == ["rmse", "mae"]
    assert table[1].split()[2:] == [f"{metrics['test'][c]:.4f}" for c in ("rmse", "mae")] and table[1].startswith("this run")
    assert table[3].startswith(names[1]) and table[3].split()[-2:] == [f"{rows[names[1]][c]:.4f}" for c in ("rmse", "mae")]
    best = min(rows, key=lambda name: rows[name]["rmse"])
    assert table[-1] == (f"this run / {best.split(' (')[0]}: rmse x{metrics['test']['rmse'] / rows[best]['rmse']:.3f}, "
                         f"mae x{metrics['test']['mae'] / rows[best]['mae']:.3f} (lower is better)")  # fmt: skip
    assert out.splitlines()[-1].startswith("this run / ")  # the ranking table still ends the output
    assert out.splitlines()[-3 - len(metrics["baselines"])].split()[3] == "ndcg@10"  # its header: "test (same split) ndcg@10 ..."
    # no rating tower: no rating rows
    assert main(["eval", str(tmp_path / "[retrieval]"), "--baselines", "--json"]) == 0
    assert "rating_baselines" not in json.loads(capsys.readouterr().out)
    assert main(["eval", str(tmp_path / "[retrieval]"), "--baselines"]) == 0
    out = capsys.readouterr().out
    assert "test ratings" not in out and "rmse" not in out and "test (same split)" in out
