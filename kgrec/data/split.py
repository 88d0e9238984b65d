"""Train / valid / test splits of interactions. Vectorised: no Python loop per user.

Every function returns one part label per interaction: 0 = train, 1 = valid, 2 = test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

import numpy as np

from kgrec.errors import ConfigError

TRAIN, VALID, TEST = 0, 1, 2
SplitStrategy = Literal["ratio", "temporal", "global_temporal", "cold_item", "given"]
SPLIT_STRATEGIES: tuple[str, ...] = get_args(SplitStrategy)


@dataclass
class SplitConfig:
    """How to split interactions when the dataset folder has no ``.train/.valid/.test.inter``.

    Attributes:
        strategy: ``ratio`` (per-user random split by ``ratios``), ``temporal`` (per user, the
            last interaction by time goes to test and the one before it to valid),
            ``global_temporal`` (every interaction ordered by time, the earliest ``ratios[0]``
            to train, the next ``ratios[1]`` to valid, the latest to test: no part sees the
            future of an earlier one), or ``cold_item`` (a share of items is held out: all their
            interactions go to valid or test, so the model never sees those items in training),
            or ``given`` (the folder's ``NAME.train/valid/test.inter`` as they are, which a
            folder that has them gets whatever the strategy; ``given`` requires them).
        ratios: train / valid / test shares for ``ratio`` and ``global_temporal``.
        cold_item_share: share of items held out by ``cold_item`` (half valid, half test).
        seed: seed of the random permutation; the same seed gives the same split.
    """

    strategy: SplitStrategy = "ratio"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    cold_item_share: float = 0.1
    seed: int = 2026

    def __post_init__(self) -> None:
        """Checks each field; a :class:`ConfigError` names the field at fault in its ``key``."""
        if self.strategy not in SPLIT_STRATEGIES:
            raise ConfigError(f"split strategy '{self.strategy}': expected one of {', '.join(SPLIT_STRATEGIES)}", key="strategy")
        self.ratios = tuple(float(r) for r in self.ratios)  # type: ignore[assignment]
        shares_ok = all(r >= 0 for r in self.ratios) and abs(sum(self.ratios) - 1.0) <= 1e-6  # false for nan
        if len(self.ratios) != 3 or not shares_ok:
            raise ConfigError(f"split ratios {self.ratios}: expected three non-negative shares summing to 1", key="ratios")
        if not 0.0 < self.cold_item_share < 1.0:
            raise ConfigError(f"cold_item_share {self.cold_item_share}: expected a share between 0 and 1", key="cold_item_share")
        # numpy's generators take no negative or fractional seed (a traceback at the split)
        if not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**64:
            raise ConfigError(f"seed {self.seed}: expected an integer from 0 to 2**64 - 1", key="seed")


def split_interactions(
    user: np.ndarray, item: np.ndarray, timestamp: np.ndarray | None, config: SplitConfig
) -> np.ndarray:
    """Part label (0 train, 1 valid, 2 test) of every interaction, as ``config`` says."""
    if config.strategy == "given":
        raise ConfigError("split 'given' takes the folder's NAME.train/valid/test.inter; there is nothing to split")
    if config.strategy == "ratio":
        return ratio_split(user, config.ratios, config.seed)
    if config.strategy in ("temporal", "global_temporal"):
        if timestamp is None:
            raise ConfigError(f"{config.strategy} split needs a 'timestamp' column in the interactions")
        if config.strategy == "temporal":
            return temporal_split(user, timestamp)
        return global_temporal_split(timestamp, config.ratios)
    return cold_item_split(item, config.cold_item_share, config.seed)


def split_negatives(
    negative: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    positive: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    positive_parts: np.ndarray,
    config: SplitConfig,
) -> np.ndarray:
    """Part label of every pair labelled negative (``negative``: its users, items, timestamps), so
    that it joins the part whose interactions it belongs with (``positive``: the interactions'
    users, items, timestamps; ``positive_parts``: their labels from :func:`split_interactions`).

    - ``ratio``: each user's negatives are split on their own by the same rule and seed.
    - ``temporal``: a user's negative at time ``t`` goes to test when ``t >= t_test`` (the time
      of the user's test interaction), else to valid when ``t >= t_valid``, else to train.
    - ``global_temporal``: the same with the two cut times of the whole file, the earliest valid
      and the earliest test interaction's.
    - ``cold_item``: a negative goes where its item's interactions went (train for an item
      without any), so training sees no pair of a held-out item.

    A tie in time goes to the later part: no training pair is later than the earliest pair it
    is measured against.
    """
    user, item, timestamp = negative
    if config.strategy == "ratio":
        return ratio_split(user, config.ratios, config.seed)
    if config.strategy == "cold_item":
        size = int(max(item.max(initial=-1), positive[1].max(initial=-1))) + 1
        part_of_item = np.full(size, TRAIN, dtype=np.int8)
        part_of_item[positive[1]] = positive_parts
        return part_of_item[item]
    if config.strategy in ("temporal", "global_temporal"):
        if timestamp is None or positive[2] is None:
            raise ConfigError(f"{config.strategy} split needs a 'timestamp' column in the interactions")
        if config.strategy == "temporal":  # the times of each user's own parts
            group, negative_group = positive[0], user
        else:  # the times of the whole file's parts
            group, negative_group = np.zeros_like(positive[0]), np.zeros_like(user)
        n_groups = int(max(group.max(initial=-1), negative_group.max(initial=-1))) + 1
        starts = {}
        for part in (VALID, TEST):  # the earliest time of each part, per user (temporal) or overall
            start = np.full(n_groups, np.inf)
            mine = positive_parts == part
            np.minimum.at(start, group[mine], positive[2][mine])
            starts[part] = start[negative_group]
        return np.where(timestamp >= starts[TEST], TEST, np.where(timestamp >= starts[VALID], VALID, TRAIN)).astype(np.int8)
    raise ConfigError(f"split '{config.strategy}' has no rule for pairs labelled negative")


def _rank_within_groups(sorted_groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a sorted group array: each row's rank inside its group and its group's size."""
    n = len(sorted_groups)
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]) if n else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, sizes)
    return rank, np.repeat(sizes, sizes)


def ratio_split(user: np.ndarray, ratios: tuple[float, float, float], seed: int) -> np.ndarray:
    """Per-user random split with RecBole's counting rule.

    For a user with ``n`` interactions: valid and test get ``floor(r * n)`` each, raised to 1
    when ``0 < r * n < 1`` as long as train keeps at least one; train gets the rest.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(user))
    order = order[np.argsort(user[order], kind="stable")]
    rank, size = _rank_within_groups(user[order])

    n_valid = np.floor(ratios[1] * size).astype(np.int64)
    n_test = np.floor(ratios[2] * size).astype(np.int64)
    for n_part, r in ((n_test, ratios[2]), (n_valid, ratios[1])):
        bump = (r * size > 0) & (r * size < 1) & (size - n_valid - n_test > 1)
        n_part += bump
    n_train = size - n_valid - n_test

    parts = np.full(len(user), TRAIN, dtype=np.int8)
    parts[order] = np.where(rank < n_train, TRAIN, np.where(rank < n_train + n_valid, VALID, TEST))
    return parts


def temporal_split(user: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    """Leave-last-out by time: per user, the last interaction to test, the one before to valid.

    Users with two interactions give one to test; users with one keep it in train. Ties in time
    go by position in the file: of two interactions in the same second, the later line is later.
    """
    order = np.lexsort((np.arange(len(user)), timestamp, user))
    rank, size = _rank_within_groups(user[order])
    from_end = size - rank  # 1 = the user's last interaction
    part = np.where((from_end == 1) & (size >= 2), TEST, np.where((from_end == 2) & (size >= 3), VALID, TRAIN))
    parts = np.empty(len(user), dtype=np.int8)
    parts[order] = part
    return parts


def global_temporal_split(timestamp: np.ndarray, ratios: tuple[float, float, float]) -> np.ndarray:
    """Split at two points in time: the earliest ``floor(r_train * n)`` interactions (by time,
    then by position in the file) to train, the next ``floor(r_valid * n)`` to valid, the rest to
    test (``r * n`` counted exactly: 0.7 of 90 is 63, not the 62 that ``0.7 * 90`` in floats
    floors to). Users and items that first appear after the cut are new to the later part (evaluation
    skips users with no training interaction, :func:`kgrec.eval.evaluate_split`)."""
    n = len(timestamp)
    order = np.lexsort((np.arange(n), timestamp))
    n_train = math.floor(Fraction(str(ratios[0])) * n)
    n_valid = math.floor(Fraction(str(ratios[1])) * n)
    parts = np.empty(n, dtype=np.int8)
    parts[order] = np.where(np.arange(n) < n_train, TRAIN, np.where(np.arange(n) < n_train + n_valid, VALID, TEST))
    return parts


def cold_item_split(item: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Hold out ``share`` of the items that have interactions: half go to valid, half to test.

    Every interaction of a held-out item lands in that item's part, so training never sees it.
    """
    rng = np.random.default_rng(seed)
    items = np.unique(item)
    n_cold = max(2, int(round(share * len(items))))
    if len(items) < 3:  # two held out at the least: no share leaves one to train on
        raise ConfigError(f"a cold_item split needs at least 3 items with interactions (one for valid, one for test, "
                          f"one to train on); this one has {len(items)}: use split ratio")  # fmt: skip
    if n_cold >= len(items):
        raise ConfigError(f"cold_item_share {share} holds out every item; lower it")
    cold = rng.choice(items, size=n_cold, replace=False)
    half = n_cold // 2
    part_of_item = np.full(int(item.max()) + 1, TRAIN, dtype=np.int8)
    part_of_item[cold[:half]] = VALID
    part_of_item[cold[half:]] = TEST
    return part_of_item[item]
