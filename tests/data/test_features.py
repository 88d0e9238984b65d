"""Feature columns as tokens (kgrec.data.features)."""

import numpy as np
import pytest

from kgrec.data.features import FLOAT_BINS, feature_tokens
from kgrec.errors import ConfigError

FEATURES = {
    "gender": np.array(["F", "M", "F", "", "M"], dtype=object),
    "tags": [["a", "b"], ["b"], [], ["a"], ["c"]],
    "age": np.array([20.0, 30.0, np.nan, 40.0, 50.0]),
    "score": [np.zeros(0)] * 5,
}
TYPES = {"gender": "token", "tags": "token_seq", "age": "float", "score": "float_seq"}


def pairs(tokens):
    return sorted((int(r), tokens.names[t]) for r, t in zip(tokens.rows, tokens.tokens, strict=True))


def test_each_kind_of_column_gives_its_tokens_and_empty_values_none():
    tokens = feature_tokens(FEATURES, TYPES, ["gender", "tags"], min_rows=1)
    assert tokens.names == ["gender=F", "gender=M", "tags=a", "tags=b", "tags=c"]  # sorted: the same ids every load
    assert pairs(tokens) == [
        (0, "gender=F"), (0, "tags=a"), (0, "tags=b"), (1, "gender=M"), (1, "tags=b"),
        (2, "gender=F"), (3, "tags=a"), (4, "gender=M"), (4, "tags=c"),
    ]  # fmt: skip


def test_a_float_column_gives_its_quantile_bin():
    tokens = feature_tokens(FEATURES, TYPES, ["age"], min_rows=1)
    bins = dict(pairs(tokens))
    assert 2 not in bins  # NaN: no token
    assert bins[0] == "age=q1/5" and bins[4] == f"age=q{FLOAT_BINS}/{FLOAT_BINS}"
    assert [bins[r] for r in (0, 1, 3, 4)] == sorted(bins[r] for r in (0, 1, 3, 4))  # bins follow the values


def test_tokens_of_a_single_row_are_dropped_and_every_usable_column_is_the_default():
    tokens = feature_tokens(FEATURES, TYPES)  # min_rows=2; float_seq is not usable
    assert tokens.names == ["gender=F", "gender=M", "tags=a", "tags=b"]  # tags=c and every age bin: one row each


def test_unknown_or_unusable_columns_are_refused_with_the_table_name():
    with pytest.raises(ConfigError, match=r"ml.user has no column 'job' \(its columns: gender, tags, age, score\)"):
        feature_tokens(FEATURES, TYPES, ["job"], owner="ml.user")
    with pytest.raises(ConfigError, match=r"user column 'score' is float_seq: expected token, token_seq or float"):
        feature_tokens(FEATURES, TYPES, ["score"])
