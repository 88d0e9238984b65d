"""Property checks of the splits against independent re-implementations (pure Python loops,
exact fractions) and invariants, on synthetic logs and on ml-100k."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from kgrec.data import SplitConfig
from kgrec.data.split import (
    TEST,
    TRAIN,
    VALID,
    cold_item_split,
    global_temporal_split,
    ratio_split,
    temporal_split,
)
from kgrec.errors import ConfigError


def recbole_counts(n: int, ratios: tuple[float, float, float]) -> tuple[int, int, int]:
    """RecBole's ``Dataset._calcu_split_ids`` (1.x), written out as it is there."""
    total = sum(ratios)
    ratios = tuple(r / total for r in ratios)
    cnt = [int(r * n) for r in ratios]
    cnt[0] = n - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * n < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt[0], cnt[1], cnt[2]


def counts_per_user(user: np.ndarray, parts: np.ndarray) -> dict[int, tuple[int, int, int]]:
    out: dict[int, list[int]] = {}
    for u, p in zip(user.tolist(), parts.tolist(), strict=True):
        out.setdefault(u, [0, 0, 0])[p] += 1
    return {u: (c[0], c[1], c[2]) for u, c in out.items()}


@pytest.fixture(scope="module")
def ml100k_log(ml100k: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = np.loadtxt(ml100k / "ml-100k.inter", skiprows=1, dtype=np.int64)
    return table[:, 0], table[:, 1], table[:, 3].astype(np.float64)


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.6, 0.2, 0.2), (0.5, 0.0, 0.5), (0.9, 0.05, 0.05)])
def test_ratio_split_counts_are_recboles_for_every_user_size(ratios):
    sizes = np.arange(1, 251)
    user = np.repeat(np.arange(len(sizes)), sizes)[::-1].copy()  # users out of order in the file
    parts = ratio_split(user, ratios, seed=5)
    counts = counts_per_user(user, parts)
    for u, n in enumerate(sizes.tolist()):
        assert counts[u] == recbole_counts(n, ratios), n


def test_few_interactions_follow_the_documented_rounding():
    # 1: train only; 2: one to test; 3 to 9: one each to valid and test; 20: 2 / 2.
    expected = {1: (1, 0, 0), 2: (1, 0, 1), 3: (1, 1, 1), 4: (2, 1, 1), 9: (7, 1, 1), 10: (8, 1, 1), 20: (16, 2, 2)}
    user = np.repeat(np.arange(len(expected)), list(expected))
    counts = counts_per_user(user, ratio_split(user, (0.8, 0.1, 0.1), seed=2026))
    assert [counts[u] for u in range(len(expected))] == list(expected.values())


def test_ratio_split_matches_a_loop_over_the_seeded_permutation(ml100k_log):
    user = ml100k_log[0]
    parts = ratio_split(user, (0.8, 0.1, 0.1), seed=2026)
    # Each user's interactions in the order the seeded permutation visits them: train first.
    seen: dict[int, list[int]] = {}
    for row in np.random.default_rng(2026).permutation(len(user)).tolist():
        seen.setdefault(int(user[row]), []).append(row)
    expected = np.full(len(user), -1)
    for rows in seen.values():
        n_train, n_valid, _ = recbole_counts(len(rows), (0.8, 0.1, 0.1))
        for k, row in enumerate(rows):
            expected[row] = TRAIN if k < n_train else VALID if k < n_train + n_valid else TEST
    assert (parts == expected).all()
    assert np.bincount(parts).tolist() == [80808, 9596, 9596]  # as `kgrec data info` reports on ml-100k


def test_ratio_split_seeds(ml100k_log):
    user = ml100k_log[0]
    a, b, c = (ratio_split(user, (0.8, 0.1, 0.1), seed) for seed in (1, 1, 2))
    assert (a == b).all() and (a != c).mean() > 0.1
    assert (counts_per_user(user, a) == counts_per_user(user, c))  # seeds move items, not counts


def python_temporal(user: np.ndarray, time: np.ndarray) -> np.ndarray:
    rows: dict[int, list[int]] = {}
    for row, u in enumerate(user.tolist()):
        rows.setdefault(u, []).append(row)
    parts = np.full(len(user), TRAIN)
    for mine in rows.values():
        mine.sort(key=lambda r: (time[r], r))  # ties: the later line is the later interaction
        if len(mine) >= 2:
            parts[mine[-1]] = TEST
        if len(mine) >= 3:
            parts[mine[-2]] = VALID
    return parts


def test_temporal_split_matches_a_loop_with_ties_by_file_order(ml100k_log):
    user, _, time = ml100k_log
    assert (temporal_split(user, time) == python_temporal(user, time)).all()
    rng = np.random.default_rng(0)
    user, time = rng.integers(0, 40, 2000), rng.integers(0, 3, 2000).astype(float)  # ties everywhere
    assert (temporal_split(user, time) == python_temporal(user, time)).all()
    assert temporal_split(np.zeros(3, int), np.zeros(3)).tolist() == [TRAIN, VALID, TEST]


def test_temporal_split_never_tests_on_the_past(ml100k_log):
    user, _, time = ml100k_log
    parts = temporal_split(user, time)
    for u in np.unique(user)[:300]:
        t, p = time[user == u], parts[user == u]
        assert t[p == TRAIN].max() <= t[p == VALID].min() <= t[p == TEST].min()


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.6, 0.3, 0.1), (0.29, 0.35, 0.36)])
def test_global_temporal_cut_points_are_the_floor_of_the_exact_shares(ratios):
    rng = np.random.default_rng(1)
    for n in [1, 2, 3, 10, 50, 90, 100, 170, 180, 200, 1000, 1234]:
        time = rng.integers(0, 20, n).astype(float)
        parts = global_temporal_split(time, ratios)
        n_train = math.floor(Fraction(str(ratios[0])) * n)
        n_valid = math.floor(Fraction(str(ratios[1])) * n)
        assert np.bincount(parts, minlength=3).tolist() == [n_train, n_valid, n - n_train - n_valid], (n, ratios)
        order = sorted(range(n), key=lambda r: (time[r], r))
        assert parts[order].tolist() == sorted(parts.tolist())  # train, then valid, then test along time


def test_global_temporal_on_ml100k(ml100k_log):
    _, _, time = ml100k_log
    parts = global_temporal_split(time, (0.8, 0.1, 0.1))
    assert np.bincount(parts).tolist() == [80000, 10000, 10000]
    assert time[parts == TRAIN].max() <= time[parts == VALID].min()
    assert time[parts == VALID].max() <= time[parts == TEST].min()


def test_cold_item_split_holds_out_items_whole(ml100k_log):
    _, item, _ = ml100k_log
    item = np.unique(item, return_inverse=True)[1]  # contiguous indices, as the dataset's
    parts = cold_item_split(item, share=0.1, seed=2026)
    items_of = {p: set(item[parts == p].tolist()) for p in (TRAIN, VALID, TEST)}
    assert not items_of[TRAIN] & items_of[VALID] and not items_of[TRAIN] & items_of[TEST]
    assert not items_of[VALID] & items_of[TEST]
    assert (len(items_of[VALID]), len(items_of[TEST])) == (84, 84)  # 168 of 1,682 items, as README says
    assert (cold_item_split(item, 0.1, 2026) == parts).all() and (cold_item_split(item, 0.1, 2027) != parts).any()


def test_cold_item_share_counts_items_not_interactions():
    item = np.r_[np.zeros(1000, int), np.arange(1, 20)]  # one item holds most interactions
    for seed in range(20):
        parts = cold_item_split(item, share=0.1, seed=seed)
        held = {int(i) for i in np.unique(item[parts != TRAIN])}
        assert len(held) == 2  # round(0.1 * 20)
        assert all((parts[item == i] != TRAIN).all() for i in held)


SPLIT_SCRIPT = """
import hashlib, sys
from kgrec.data import SplitConfig, load_dataset
for strategy in ("ratio", "temporal", "global_temporal", "cold_item"):
    d = load_dataset(sys.argv[1], SplitConfig(strategy=strategy, seed=11))
    for part in (d.train, d.valid, d.test):
        rows = sorted(zip([d.users[u] for u in part.user], [d.items[i] for i in part.item]))
        print(strategy, hashlib.sha256(repr(rows).encode()).hexdigest())
"""


def test_splits_do_not_depend_on_hash_randomisation(atomic):
    rng = np.random.default_rng(3)
    columns = rng.integers(0, 60, 1500), rng.integers(0, 90, 1500), rng.integers(0, 50, 1500)
    unique = {f"u{u}|i{i}": f"u{u}|i{i}|{t}" for u, i, t in zip(*columns, strict=True)}  # one line a pair
    folder = atomic(inter="user_id:token|item_id:token|timestamp:float\n" + "\n".join(unique.values()))
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", SPLIT_SCRIPT, str(folder)], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1] and len(outputs[0].splitlines()) == 12


@pytest.mark.parametrize("ratios", [(math.nan, 0.5, 0.5), (0.8, math.nan, 0.1), (0.8, 0.1, math.nan)])
def test_nan_ratios_are_refused(ratios):
    # nan slipped through (nan < 0 and abs(nan - 1) > 1e-6 are both false): a ratio split of
    # (nan, 0.5, 0.5) left train with at most one interaction per user, a global one a traceback.
    with pytest.raises(ConfigError) as error:
        SplitConfig(ratios=ratios)
    assert error.value.key == "ratios"


@pytest.mark.parametrize("seed", [1.5, "7", None])
def test_a_seed_that_is_no_integer_is_refused(seed):
    with pytest.raises(ConfigError) as error:
        SplitConfig(seed=seed)  # type: ignore[arg-type]
    assert error.value.key == "seed"
    assert SplitConfig(seed=np.int64(3)).seed == 3
