"""Audit of the feature tokens (kgrec.data.features): leakage, missing values, columns that give nothing."""

import numpy as np
import pytest

from kgrec.data import SplitConfig, load_dataset
from kgrec.data.features import feature_tokens
from kgrec.errors import ConfigError

FEATURES = {
    "gender": np.array(["F", "M", "F", "", "M", "F"], dtype=object),
    "zip": np.array(["111", "222", "333", "444", "", "555"], dtype=object),
    "tags": [["a", "b"], ["b"], [], ["a", "a"], ["c"], []],
    "age": np.array([20.0, 30.0, np.nan, 40.0, 50.0, 60.0]),
    "blank": np.array([""] * 6, dtype=object),
}
TYPES = {"gender": "token", "zip": "token", "tags": "token_seq", "age": "float", "blank": "token"}


def test_a_named_column_whose_every_value_is_one_rows_is_refused_rather_than_adding_nothing():
    # before: [gender, zip] trained with zip adding nothing, and [zip] alone stopped on "has no values in zip"
    for columns in (["gender", "zip"], ["zip"]):
        with pytest.raises(ConfigError, match=r"^each value of ml.user column 'zip' is held by fewer than 2 rows, so it "
                                              r"gives no token .*; drop it from the list$"):  # fmt: skip
            feature_tokens(FEATURES, TYPES, columns, owner="ml.user")
    with pytest.raises(ConfigError, match=r"ml.user column 'blank' has no values; drop it from the list"):
        feature_tokens(FEATURES, TYPES, ["gender", "blank"], owner="ml.user")


def test_an_empty_column_list_is_refused_naming_the_usable_columns():
    # before: no token at all, which training then reported as "no values in gender, zip, tags, age, blank"
    with pytest.raises(ConfigError, match=r"no ml.user column named \(an empty list\); name some, or leave it unset "
                                          r"\(null\) for every usable one \(gender, zip, tags, age, blank\)"):  # fmt: skip
        feature_tokens(FEATURES, TYPES, [], owner="ml.user")


def test_by_default_columns_that_give_nothing_are_skipped_and_missing_values_give_no_token():
    tokens = feature_tokens(FEATURES, TYPES)  # every usable column: zip and blank give nothing, silently as documented
    assert tokens.names == ["gender=F", "gender=M", "tags=a", "tags=b"]
    per_row = {row: sorted({tokens.names[t] for r, t in zip(tokens.rows, tokens.tokens, strict=True) if r == row})
               for row in range(6)}  # fmt: skip
    assert per_row[3] == ["tags=a"]  # gender empty, zip alone, age's bin alone: only the tag
    assert per_row[5] == ["gender=F"]  # no tags
    assert tokens.rows.dtype == tokens.tokens.dtype == np.int64


INTER = "user_id:token|item_id:token|rating:float|timestamp:float\n" + "\n".join(
    f"u{u}|i{(u * 5 + k) % 12}|{1 + (u + k) % 5}|{u * 100 + k}" for u in range(10) for k in range(6)
)
USERS = "user_id:token|job:token|region:token_seq|age:float\n" + "\n".join(
    f"u{u}|{['a', 'b', 'c'][u % 3]}|r{u % 2} r{u % 4}|{20 + 3 * u}" for u in range(10)
) + "\nu99|a|r0|80"  # a user with no interaction at all


def test_the_tokens_come_from_the_user_file_alone_whatever_the_split(atomic):
    """Valid and test interactions never reach the feature vocabulary: every split of the same
    files gives the same tokens for the same raw users."""
    root = atomic(name="people", inter=INTER, user=USERS)
    seen = []
    for split in (SplitConfig(seed=1), SplitConfig(seed=2), SplitConfig(strategy="temporal"),
                  SplitConfig(strategy="global_temporal")):  # fmt: skip
        data = load_dataset(root, split)
        tokens = feature_tokens(data.user_features, data.user_feature_types, owner="people.user")
        seen.append({(str(data.users[r]), tokens.names[t]) for r, t in zip(tokens.rows, tokens.tokens, strict=True)})
    assert all(s == seen[0] for s in seen[1:])
    assert ("u99", "job=a") in seen[0]  # the row of a user without interactions is read from the file too


def test_training_names_the_column_that_gives_no_token(atomic):
    from kgrec.train import prepare
    from tests.conftest import TOY_INTER, TOY_ITEM, tiny_config

    users = "user_id:token|gender:token|zip:token\nu1|F|111\nu2|M|222\nu3|F|333"
    root = atomic(inter=TOY_INTER, item=TOY_ITEM, user=users)
    fast = ["model.user_encoder=id+features", "eval.ks=[2]", "model.use_graph=false", "model.id_dropout=0", "model.tasks=[retrieval]"]
    config = tiny_config(root, *fast, "model.user_features=[gender,zip]")
    with pytest.raises(ConfigError, match=r"^model.user_features: each value of toy.user column 'zip' is held by fewer than 2 rows"):
        prepare(config, progress=False)
    kept = prepare(tiny_config(root, *fast, "model.user_features=[gender]"), progress=False)
    assert kept.sizes.num_user_features == 1  # gender=F (gender=M: one user alone)
