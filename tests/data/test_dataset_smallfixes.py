"""A given split whose training file has ratings and whose valid or test file has none is refused
when read, naming the file and the missing column (a run monitoring rmse / auc stopped after an
epoch on a bare KeyError; others silently reported no rating or like metric)."""

from __future__ import annotations

import pytest

from kgrec.data import load_dataset
from kgrec.errors import DataError

RATED = "user_id:token|item_id:token|rating:float\n"
PLAIN = "user_id:token|item_id:token\n"


def test_a_valid_file_without_the_training_ratings_is_refused_by_name(atomic):
    folder = atomic(train_inter=RATED + "u1|a|5\nu1|b|2\nu2|a|4", valid_inter=PLAIN + "u1|c", test_inter=RATED + "u2|c|3")
    with pytest.raises(DataError, match=r"toy\.valid\.inter:1: no 'rating' column \(header has: user_id:token, "
                                        r"item_id:token\), though toy\.train\.inter has one") as refused:  # fmt: skip
        load_dataset(folder)
    assert refused.value.path == folder / "toy.valid.inter"
    assert "add a rating:float column to toy.valid.inter, or remove it from toy.train.inter" in str(refused.value)


def test_both_files_without_ratings_are_named(atomic):
    folder = atomic(train_inter=RATED + "u1|a|5\nu2|a|4", valid_inter=PLAIN + "u1|c", test_inter=PLAIN + "u2|c")
    with pytest.raises(DataError, match=r"toy\.valid\.inter:1: .*\(nor has toy\.test\.inter\).*"
                                        r"add a rating:float column to toy\.valid\.inter and toy\.test\.inter"):  # fmt: skip
        load_dataset(folder)


def test_a_test_file_without_the_training_ratings_is_refused(atomic):
    folder = atomic(train_inter=RATED + "u1|a|5\nu2|a|4", valid_inter=RATED + "u1|c|1", test_inter=PLAIN + "u2|c")
    with pytest.raises(DataError, match=r"toy\.test\.inter:1: no 'rating' column"):
        load_dataset(folder)


@pytest.mark.parametrize(("train", "other"), [(RATED + "u1|a|5\nu2|a|4", RATED), (PLAIN + "u1|a\nu2|a", PLAIN),
                                              (PLAIN + "u1|a\nu2|a", RATED)])  # fmt: skip
def test_splits_whose_parts_agree_or_train_has_no_ratings_load(atomic, train, other):
    rows = {RATED: "u1|c|3", PLAIN: "u1|c"}[other]
    ds = load_dataset(atomic(train_inter=train, valid_inter=other + rows, test_inter=other + rows.replace("u1", "u2")))
    assert ds.split == "given" and (len(ds.train), len(ds.valid), len(ds.test)) == (2, 1, 1)
