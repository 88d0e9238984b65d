"""Most-popular and EASE against their definitions; tuning reads valid only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.baselines import EASE, MostPopular, reference_metrics, tune_on_valid
from kgrec.data import Dataset, Interactions, load_dataset
from kgrec.eval import evaluate_split


def pairs(users: list[int], items: list[int]) -> Interactions:
    return Interactions(user=np.array(users, dtype=np.int64), item=np.array(items, dtype=np.int64))


def test_most_popular_ranks_items_by_train_counts():
    # counts: item 0 -> 1, item 1 -> 3, item 2 -> 0, item 3 -> 2
    train = pairs([0, 1, 2, 0, 1, 2], [1, 1, 1, 3, 3, 0])
    model = MostPopular().fit(train, n_users=3, n_items=4)
    scores = model.score(torch.tensor([0, 2]))
    assert scores.shape == (2, 4)
    assert scores[0].tolist() == [1.0, 3.0, 0.0, 2.0]
    assert torch.argsort(scores[1], descending=True).tolist() == [1, 3, 0, 2]


def test_ease_equals_the_numpy_closed_form_and_has_zero_diagonal():
    x = np.array(
        [[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1]],
        dtype=np.float64,
    )
    users, items = np.nonzero(x)
    reg = 2.0
    p = np.linalg.inv(x.T @ x + reg * np.eye(4))
    expected = np.eye(4) - p @ np.diag(1.0 / np.diag(p))  # B = I - P diagMat(1/diag(P))
    model = EASE(reg).fit(pairs(users.tolist(), items.tolist()), n_users=5, n_items=4)
    assert model.weight is not None
    np.testing.assert_allclose(model.weight.numpy(), expected, atol=1e-6)
    assert torch.all(model.weight.diagonal() == 0)
    assert model.weight.is_contiguous()  # row-major: the teacher's sparse products would copy it each step
    np.testing.assert_allclose(model.score(torch.tensor([3, 0])).numpy(), x[[3, 0]] @ expected, atol=1e-5)


def peak_of_fit(tmp_path, setup: str, model: str, n_users: int, n_items: int, n: int, unit: int) -> float:
    """How many float64 matrices of ``unit`` entries the peak resident size grew by while
    ``model`` (an expression over ``setup``'s imports) fits ``n`` random interactions, measured in
    a fresh process, whose peak resident size counts each large allocation (blocks this large
    come from mmap)."""
    import subprocess
    import sys

    script = tmp_path / "fit.py"
    script.write_text(
        f"import resource, torch\n{setup}\n"
        "from kgrec.data import Interactions\n"
        "def random_train(n_users, n_items, n):\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    user, item = torch.randint(n_users, (n,), generator=g), torch.randint(n_items, (n,), generator=g)\n"
        "    return Interactions(user=user.numpy(), item=item.numpy())\n"
        f"{model}.fit(random_train(50, 50, 500), 50, 50)\n"  # libraries and thread pools, not the peak
        f"train = random_train({n_users}, {n_items}, {n})\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"fitted = {model}.fit(train, {n_users}, {n_items})\n"
        "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        f"print(grew * 1024 / (8 * {unit}))\n"
    )
    return float(subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout)


def test_ease_fit_holds_at_most_two_item_by_item_float64_matrices(tmp_path):
    # Its memory is what caps the catalogue: four live (I, I) float64 matrices (the Gram matrix,
    # its factor, the inverse, B) took 29 GB at 30k items.
    peak = peak_of_fit(tmp_path, "from kgrec.baselines import EASE", "EASE(10.0)", 3000, 3000, 60000, 3000**2)
    assert peak < 2.75, f"peak of the fit: {peak:.2f} float64 (I, I) matrices"


def test_ease_fit_on_dense_cooccurrence_holds_at_most_two_item_by_item_matrices_too(tmp_path):
    """When nearly every pair of items co-occurs (ml-100k: 61% of the pairs), one sparse product
    X^T X held each pair as a sparse entry beside its dense copy: 4-5 (I, I) float64 matrices,
    past the two the memory check counts. Its rows are made a block at a time (blocks made small
    here, as a catalogue of tens of thousands of items makes them)."""
    setup = "from kgrec.baselines import EASE\nimport kgrec.baselines.ease as ease\nease.GRAM_BLOCK_ENTRIES = 600 * 400\nease.GRAM_SPARSE_BYTES = 0"
    peak = peak_of_fit(tmp_path, setup, "EASE(10.0)", 600, 2500, 600 * 150, 2500**2)  # 87% of the pairs co-occur
    assert peak < 2.75, f"peak of the fit: {peak:.2f} float64 (I, I) matrices"


def _tiny_dataset(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_users, n_items = 30, 20
    key = rng.choice(n_users * n_items, 240, replace=False)
    user, item = key // n_items, key % n_items
    return Dataset(
        name="tiny",
        path=None,  # type: ignore[arg-type]
        users=np.array([f"u{i}" for i in range(n_users)], dtype=object),
        items=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        train=pairs(user[:180].tolist(), item[:180].tolist()),
        valid=pairs(user[180:210].tolist(), item[180:210].tolist()),
        test=pairs(user[210:].tolist(), item[210:].tolist()),
        split="given",
    )


class _Untouchable:
    def __getattr__(self, name: str):
        raise AssertionError(f"tuning read the test part (.{name})")


def test_tune_on_valid_picks_the_best_valid_value_without_reading_test():
    ds = _tiny_dataset()
    ds.test = _Untouchable()  # type: ignore[assignment]
    result = tune_on_valid(ds, EASE, (1.0, 10.0, 100.0), ks=(5, 10))
    assert list(result.valid) == [1.0, 10.0, 100.0]
    best = max(result.valid, key=lambda v: result.valid[v]["ndcg@10"])
    assert result.best == best and result.model.reg == best  # type: ignore[attr-defined]


def test_tune_on_valid_refuses_an_empty_valid_part():
    ds = _tiny_dataset()
    ds.valid = pairs([], [])
    with pytest.raises(ValueError, match="valid part has no interactions"):
        tune_on_valid(ds, EASE, (1.0, 10.0))


def test_reference_metrics_rank_the_test_part_with_ease_tuned_on_valid(monkeypatch):
    ds = _tiny_dataset()
    rows = reference_metrics(ds, grid=(0.1, 1.0, 10.0, 100.0), device="cpu")
    tuned = tune_on_valid(ds, EASE, (0.1, 1.0, 10.0, 100.0))
    assert list(rows) == ["most-popular", f"EASE (lambda={tuned.best:g}, chosen on valid)"]
    popular = MostPopular().fit(ds.train, ds.n_users, ds.n_items)
    assert rows["most-popular"] == evaluate_split(popular.score, ds, "test")
    assert rows[f"EASE (lambda={tuned.best:g}, chosen on valid)"] == evaluate_split(tuned.model.score, ds, "test")
    monkeypatch.setattr("kgrec.baselines.reference.MAX_EASE_ITEMS", ds.n_items - 1)  # EASE's I x I would not fit
    assert list(reference_metrics(ds, grid=(1.0,), device="cpu")) == ["most-popular"]


def test_reference_metrics_say_when_eases_lambda_is_an_end_of_the_grid():
    """Of two values the chosen one is an end: a wider grid may do better (nothing said so)."""
    ds = _tiny_dataset()
    tuned = tune_on_valid(ds, EASE, (1.0, 100.0))
    name = list(reference_metrics(ds, grid=(1.0, 100.0), device="cpu"))[1]
    assert name == f"EASE (lambda={tuned.best:g}, chosen on valid, the end of the grid 1-100)"
    inside = tune_on_valid(ds, EASE, (0.1, 1.0, 10.0, 100.0))
    assert not inside.at_edge  # the grid holds a value on each side of the chosen one
    assert list(reference_metrics(ds, grid=(0.1, 1.0, 10.0, 100.0), device="cpu"))[1] == (
        f"EASE (lambda={inside.best:g}, chosen on valid)"
    )


def test_ease_beats_most_popular_on_ml100k(ml100k):
    ds = load_dataset(ml100k)
    pop = evaluate_split(MostPopular().fit(ds.train, ds.n_users, ds.n_items).score, ds, "test")
    ease = evaluate_split(EASE(500.0).fit(ds.train, ds.n_users, ds.n_items).score, ds, "test")
    # measured on the default split (seed 2026): pop 0.135 / 0.177, EASE 0.325 / 0.384
    assert 0.10 < pop["ndcg@10"] < 0.18 and 0.14 < pop["recall@20"] < 0.22
    assert 0.29 < ease["ndcg@10"] < 0.37 and 0.34 < ease["recall@20"] < 0.43


@pytest.mark.parametrize(("n_users", "n_items", "n"), [(50, 40, 300), (300, 2000, 3000), (2000, 300, 50000), (1, 5, 3)])
def test_item_cooccurrence_is_x_transpose_x_in_one_product_or_by_blocks(monkeypatch, n_users, n_items, n):
    import kgrec.baselines.ease as ease
    from kgrec.baselines.ease import blocked_gram, item_cooccurrence
    from kgrec.eval.matrix import interaction_matrix

    g = torch.Generator().manual_seed(n)
    user, item = torch.randint(n_users, (n,), generator=g), torch.randint(n_items, (n,), generator=g)
    sparse = interaction_matrix(Interactions(user=user.numpy(), item=item.numpy()), n_users, n_items)
    x = torch.zeros(n_users, n_items, dtype=torch.float64)
    x[user, item] = 1.0
    assert torch.equal(item_cooccurrence(sparse), x.T @ x)  # one sparse product (small)
    monkeypatch.setattr(ease, "GRAM_SPARSE_BYTES", 0)
    monkeypatch.setattr(ease, "GRAM_BLOCK_ENTRIES", 7)  # blocks of a few columns, the last one short
    assert torch.equal(item_cooccurrence(sparse), x.T @ x)
    assert torch.equal(blocked_gram(sparse, 3), x @ x.T)
