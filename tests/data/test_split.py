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
    split_negatives,
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


def test_temporal_split_sends_a_users_negative_to_the_part_of_its_time():
    """User 0 interacts at t=1..4 (valid at 3, test at 4): a negative before 3 is train's, from
    3 (a tie too) valid's, from 4 test's. User 1 has one interaction (train) and user 2 none:
    theirs stay in train."""
    user, item, time = np.array([0, 0, 0, 0, 1]), np.array([0, 1, 2, 3, 0]), np.array([1.0, 2, 3, 4, 10])
    parts = split_interactions(user, item, time, SplitConfig(strategy="temporal"))
    assert parts.tolist() == [TRAIN, TRAIN, VALID, TEST, TRAIN]
    negative = (np.array([0, 0, 0, 0, 0, 1, 2]), np.array([4, 4, 5, 6, 7, 1, 1]), np.array([0.5, 3, 3.5, 4, 9, 20, 5]))
    got = split_negatives(negative, (user, item, time), parts, SplitConfig(strategy="temporal"))
    assert got.tolist() == [TRAIN, VALID, VALID, TEST, TEST, TRAIN, TRAIN]


def test_global_temporal_split_sends_a_negative_to_the_part_of_its_time():
    time = np.arange(1.0, 11.0)  # train 1..8, valid 9, test 10: a negative between 8 and 9 is train's
    user, item = np.arange(10) % 3, np.arange(10)
    config = SplitConfig(strategy="global_temporal")
    parts = split_interactions(user, item, time, config)
    negative = (np.array([0, 1, 2, 0, 1]), np.array([1, 2, 3, 4, 5]), np.array([8.0, 8.5, 9, 10, 11]))
    assert split_negatives(negative, (user, item, time), parts, config).tolist() == [TRAIN, TRAIN, VALID, TEST, TEST]


def test_cold_item_split_sends_a_negative_to_its_items_part(random_log):
    user, item, _ = random_log
    config = SplitConfig(strategy="cold_item", cold_item_share=0.2)
    parts = split_interactions(user, item, None, config)
    negative_item = np.r_[np.arange(400), 400]  # every item, and one without interactions
    negative = (np.zeros(401, np.int64), negative_item, None)
    got = split_negatives(negative, (user, item, None), parts, config)
    part_of_item = {int(i): int(p) for i, p in zip(item, parts, strict=True)}
    assert got.tolist() == [part_of_item.get(i, TRAIN) for i in negative_item.tolist()]
    assert {VALID, TEST} <= set(got.tolist())


def test_ratio_split_divides_negatives_per_user_as_interactions(random_log):
    user, item, time = random_log
    config = SplitConfig(seed=5)
    got = split_negatives((user, item, time), (user[:10], item[:10], time[:10]), np.zeros(10, np.int8), config)
    assert got.tolist() == ratio_split(user, config.ratios, 5).tolist()
