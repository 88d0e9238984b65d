import numpy as np
import pytest

from kgrec.data import SplitConfig, load_dataset
from kgrec.data.split import (
    TEST,
    TRAIN,
    VALID,
    cold_item_split,
    global_temporal_split,
    ratio_split,
    split_interactions,
    temporal_split,
)
from kgrec.errors import ConfigError, DataError


def pairs(inter):
    return set(zip(inter.user.tolist(), inter.item.tolist(), strict=True))


@pytest.fixture
def random_log():
    rng = np.random.default_rng(0)
    user = rng.integers(0, 50, 3000)
    item = rng.integers(0, 400, 3000)
    return user, item, rng.random(3000)


def test_ratio_split_counts_follow_recbole_rule():
    user = np.repeat(np.arange(4), [10, 5, 2, 1])
    parts = ratio_split(user, (0.8, 0.1, 0.1), seed=1)
    counts = {u: np.bincount(parts[user == u], minlength=3).tolist() for u in range(4)}
    # 10 -> 8/1/1; 5 -> floor(.5)=0 raised to 1 each -> 3/1/1; 2 -> test first: 1/0/1; 1 -> 1/0/0
    assert counts == {0: [8, 1, 1], 1: [3, 1, 1], 2: [1, 0, 1], 3: [1, 0, 0]}


def test_ratio_split_is_seeded(random_log):
    user, _, _ = random_log
    assert (ratio_split(user, (0.8, 0.1, 0.1), 7) == ratio_split(user, (0.8, 0.1, 0.1), 7)).all()
    assert (ratio_split(user, (0.8, 0.1, 0.1), 7) != ratio_split(user, (0.8, 0.1, 0.1), 8)).any()


def test_temporal_split_puts_each_users_last_interaction_in_test(random_log):
    user, _, time = random_log
    parts = temporal_split(user, time)
    for u in np.unique(user):
        t = time[user == u]
        p = parts[user == u]
        assert t[p == TEST].min() == t.max()
        assert (t[p == TRAIN] < t[p == VALID].min()).all()


def test_global_temporal_split_cuts_the_whole_log_at_two_times(random_log):
    _, _, time = random_log
    parts = global_temporal_split(time, (0.8, 0.1, 0.1))
    assert np.bincount(parts, minlength=3).tolist() == [2400, 300, 300]
    assert time[parts == TRAIN].max() < time[parts == VALID].min()  # no part sees a later one's past
    assert time[parts == VALID].max() < time[parts == TEST].min()


def test_global_temporal_split_breaks_ties_by_file_order():
    time = np.array([5.0, 1.0, 5.0, 5.0, 9.0])
    parts = global_temporal_split(time, (0.6, 0.2, 0.2))  # 3 / 1 / 1: of the three 5.0s, the first two train
    assert parts.tolist() == [TRAIN, TRAIN, TRAIN, VALID, TEST]


def test_global_temporal_split_needs_timestamps(atomic):
    with pytest.raises(ConfigError, match="global_temporal split needs a 'timestamp' column"):
        split_interactions(np.zeros(3, int), np.zeros(3, int), None, SplitConfig(strategy="global_temporal"))
    folder = atomic(inter="user_id:token|item_id:token\nu|a\nv|b")  # a dataset folder: the file is named
    for strategy in ("temporal", "global_temporal"):
        with pytest.raises(DataError, match=rf"toy.inter:1: split '{strategy}' orders interactions by time, and this "
                                            r"file has no 'timestamp' column \(header has: user_id:token, item_id:token\)"):  # fmt: skip
            load_dataset(folder, SplitConfig(strategy=strategy))


def test_cold_item_split_keeps_held_out_items_out_of_train(random_log):
    _, item, _ = random_log
    parts = cold_item_split(item, share=0.2, seed=3)
    train_items = set(item[parts == TRAIN].tolist())
    held_out = set(item[parts != TRAIN].tolist())
    assert held_out and not (train_items & held_out)
    assert not (set(item[parts == VALID].tolist()) & set(item[parts == TEST].tolist()))


def test_parts_are_disjoint_and_cover_everything(toy_dataset):
    ds = load_dataset(toy_dataset, SplitConfig(ratios=(0.5, 0.25, 0.25), seed=5))
    train, valid, test = pairs(ds.train), pairs(ds.valid), pairs(ds.test)
    assert not (train & valid or train & test or valid & test)
    assert len(train) + len(valid) + len(test) == 8


def test_bad_split_config_is_refused():
    with pytest.raises(ConfigError, match="summing to 1"):
        SplitConfig(ratios=(0.5, 0.1, 0.1))
    with pytest.raises(ConfigError, match="expected one of ratio, temporal, global_temporal, cold_item"):
        SplitConfig(strategy="random")  # type: ignore[arg-type]
