"""Interaction matrices checked against plain Python sets on random tiny datasets: merged parts
and duplicates, empty rows and columns, row gathers in any batching, ages, the exclusion rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.data import Dataset, Interactions
from kgrec.eval import evaluate_split
from kgrec.eval.matrix import (
    age_matrix,
    as_csr,
    dense_rows,
    interaction_matrix,
    is_stored,
    row_entries,
    sparse_rows,
)


def random_part(rng: np.random.Generator, n_users: int, n_items: int, n: int, timestamps: bool = False) -> Interactions:
    """``n`` random pairs (repeats likely) among the first users and items only: the last user
    and the last item never occur."""
    user = rng.integers(0, max(n_users - 1, 1), n)
    item = rng.integers(0, max(n_items - 1, 1), n)
    stamp = rng.integers(0, 5, n).astype(np.float64) * 1800.0 if timestamps else None
    return Interactions(user=user, item=item, timestamp=stamp)


def pair_set(*parts: Interactions) -> set[tuple[int, int]]:
    return {(int(u), int(i)) for p in parts for u, i in zip(p.user, p.item, strict=True)}


@pytest.mark.parametrize("seed", range(6))
def test_interaction_matrix_holds_exactly_the_pairs_of_its_parts(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    parts = [random_part(rng, n_users, n_items, int(rng.integers(0, 15))) for _ in range(int(rng.integers(1, 4)))]
    m = interaction_matrix(parts, n_users, n_items)
    expected = pair_set(*parts)
    assert m.layout == torch.sparse_csr and tuple(m.shape) == (n_users, n_items)
    assert m.crow_indices().dtype == m.col_indices().dtype == torch.int64 and m.values().dtype == torch.float32
    assert m.values().eq(1).all() and m._nnz() == len(expected)
    crow, col = m.crow_indices().tolist(), m.col_indices().tolist()
    rows = [col[crow[u] : crow[u + 1]] for u in range(n_users)]
    assert all(r == sorted(set(r)) for r in rows)  # sorted, no repeat
    assert {(u, i) for u, r in enumerate(rows) for i in r} == expected
    assert rows[-1] == [] and not m.to_dense()[:, -1].any()  # the user and the item never seen


@pytest.mark.parametrize("seed", range(4))
def test_row_gathers_in_any_batching_agree_with_one_batch_and_the_sets(seed):
    rng = np.random.default_rng(100 + seed)
    n_users, n_items = 7, 6
    part = random_part(rng, n_users, n_items, 20)
    m = interaction_matrix(part, n_users, n_items)
    expected = pair_set(part)
    rows = torch.from_numpy(rng.integers(0, n_users, 7))  # any order, repeats, empty rows
    cols = torch.from_numpy(rng.integers(0, n_items, (7, 4)))
    whole = (row_entries(m, rows), dense_rows(m, rows), is_stored(m, rows, cols), sparse_rows(m, rows).to_dense())
    pos, col = whole[0]
    assert sorted(zip(pos.tolist(), col.tolist(), strict=True)) == sorted(
        (b, i) for b, u in enumerate(rows.tolist()) for i in range(n_items) if (u, i) in expected
    )
    assert whole[1].tolist() == [[float((u, i) in expected) for i in range(n_items)] for u in rows.tolist()]
    assert whole[2].tolist() == [[(u, int(i)) in expected for i in c] for u, c in zip(rows.tolist(), cols, strict=True)]
    assert torch.equal(whole[3], whole[1])
    for size in (1, 3):
        batches = list(zip(torch.split(rows, size), torch.split(cols, size), strict=True))
        assert torch.equal(torch.cat([dense_rows(m, r) for r, _ in batches]), whole[1])
        assert torch.equal(torch.cat([is_stored(m, r, c) for r, c in batches]), whole[2])
        assert torch.equal(torch.cat([sparse_rows(m, r).to_dense() for r, _ in batches]), whole[3])


@pytest.mark.parametrize("seed", range(4))
def test_ages_are_each_pairs_latest_time_before_its_users_latest(seed):
    rng = np.random.default_rng(200 + seed)
    n_users, n_items = 5, 6
    train = random_part(rng, n_users, n_items, 25, timestamps=True)
    latest_pair: dict[tuple[int, int], float] = {}
    latest_user: dict[int, float] = {}
    for u, i, t in zip(train.user.tolist(), train.item.tolist(), train.timestamp.tolist(), strict=True):
        latest_pair[u, i] = max(latest_pair.get((u, i), -np.inf), t)
        latest_user[u] = max(latest_user.get(u, -np.inf), t)
    ages = age_matrix(train, n_users, n_items)
    binary = interaction_matrix(train, n_users, n_items)
    assert torch.equal(ages.crow_indices(), binary.crow_indices()) and torch.equal(ages.col_indices(), binary.col_indices())
    expected = torch.zeros(n_users, n_items, dtype=torch.float64)
    for (u, i), t in latest_pair.items():
        expected[u, i] = (latest_user[u] - t) / 3600.0
    assert torch.equal(ages.to_dense(), expected)


def test_an_empty_training_part_has_an_empty_age_matrix():
    """``np.r_[..., True]`` gave one "latest" flag for no pair: an IndexError."""
    none = np.zeros(0, dtype=np.int64)
    ages = age_matrix(Interactions(user=none, item=none, timestamp=np.zeros(0)), 3, 4)
    assert tuple(ages.shape) == (3, 4) and ages._nnz() == 0 and ages.crow_indices().tolist() == [0, 0, 0, 0]


def test_a_torch_matrix_stored_zero_is_no_interaction_as_for_scipy():
    """A torch CSR was used as given: its stored zeros masked items a scipy matrix with the same
    entries (whose stored zeros ``as_csr`` drops) left ranked."""
    sparse = pytest.importorskip("scipy.sparse")
    crow, col, value = [0, 2, 2, 4], [0, 2, 1, 3], [1.0, 0.0, 0.0, 2.0]
    torch_m = torch.sparse_csr_tensor(
        torch.tensor(crow), torch.tensor(col), torch.tensor(value), (3, 4), check_invariants=True
    )
    scipy_m = sparse.csr_matrix((np.array(value), np.array(col), np.array(crow)), shape=(3, 4))
    rows = torch.tensor([2, 0, 1])
    expected = [[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert dense_rows(as_csr(scipy_m), rows).tolist() == expected
    assert dense_rows(as_csr(torch_m, 3, 4), rows).tolist() == expected
    kept = as_csr(torch_m)
    assert kept.crow_indices().tolist() == [0, 1, 1, 2] and kept.values().tolist() == [1.0, 2.0]
    assert as_csr(kept) is kept  # nothing stored as zero: used as given


@pytest.mark.parametrize("seed", range(5))
def test_evaluate_split_masks_train_for_valid_and_train_and_valid_for_test_never_test(seed):
    """With K = n_items every unmasked relevant item is listed, so recall@K is the share of a
    user's target items outside the masked parts: given parts that share pairs, a valid item
    also in test stays rankable when validating."""
    rng = np.random.default_rng(300 + seed)
    n_users, n_items = 6, 7
    train = random_part(rng, n_users - 2, n_items, 12)  # users 3 to 5 have none
    valid, test = (random_part(rng, n_users, n_items, 10) for _ in range(2))
    ds = Dataset(
        name="rand", path=None,  # type: ignore[arg-type]
        users=np.array([f"u{u}" for u in range(n_users)], dtype=object),
        items=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        train=train, valid=valid, test=test, split="given",
    )  # fmt: skip
    scores = torch.rand(n_users, n_items, generator=torch.Generator().manual_seed(seed))
    known = {u for u, _ in pair_set(train)}
    for part, target, masked in (("valid", valid, pair_set(train)), ("test", test, pair_set(train, valid))):
        by_user: dict[int, set[int]] = {}
        for u, i in pair_set(target):
            if u in known:  # users without a training pair are skipped
                by_user.setdefault(u, set()).add(i)
        recalls = [len({i for i in items if (u, i) not in masked}) / len(items) for u, items in by_user.items()]
        result = evaluate_split(lambda users: scores[users], ds, part, ks=(n_items,), batch_size=2)
        assert result["n_users"] == len(by_user)
        assert result[f"recall@{n_items}"] == pytest.approx(sum(recalls) / len(recalls) if recalls else 0.0)
