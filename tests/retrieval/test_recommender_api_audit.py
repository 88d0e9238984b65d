"""The Python query API's arguments (an audit of kgrec/retrieval/recommender.py): batch sizes,
``where`` mappings read as ``where`` strings are, and arguments of the wrong type refused in one
line rather than with a Python traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval import Recommender


@pytest.fixture(scope="module")
def rec(trained_run: Path) -> Recommender:
    return Recommender.open(trained_run)


def ids(results) -> list[str]:
    return [r.item_id for r in results]


def test_a_batch_size_below_one_is_refused_not_answered_with_no_lists(rec: Recommender):
    """``recommend_batch(users, batch_size=-1)`` returned ``[]`` for two users (its loop ran
    over no batch), and ``batch_size=0`` failed in ``range()``."""
    for size in (-1, 0, 1.5, True):
        with pytest.raises(RetrievalError, match=f"batch_size must be a positive integer, got {size!r}"):
            rec.recommend_batch(["u0", "u1"], 3, batch_size=size, explain=False)
        with pytest.raises(RetrievalError, match="batch_size must be a positive integer"):
            rec.iter_similar(["i0", "i1"], 3, batch_size=size, explain=False)
    one_by_one = rec.recommend_batch(["u0", "u1", "u2"], 3, batch_size=np.int64(1), explain=False)
    assert [ids(r) for r in one_by_one] == [ids(r) for r in rec.recommend_batch(["u0", "u1", "u2"], 3, explain=False)]
    assert len(one_by_one) == 3 and all(len(r) == 3 for r in one_by_one)
    assert [ids(r) for r in rec.iter_similar(["i0", "i1"], 3, batch_size=1, explain=False)] == [
        ids(rec.similar("i0", 3, explain=False)), ids(rec.similar("i1", 3, explain=False))
    ]


def test_a_where_mapping_is_read_as_the_same_filter_written_as_a_string(rec: Recommender):
    """``where={"class": " Action "}`` kept no item though ``where="class= Action "`` keeps the
    Action films (the string's spaces are dropped, the mapping's were compared), and
    ``{"class": ""}`` silently kept none where ``"class="`` is refused."""
    action = ids(rec.recommend("u0", 5, where="class=Action", explain=False))
    assert len(action) == 5
    assert ids(rec.recommend("u0", 5, where="class= Action ", explain=False)) == action
    assert ids(rec.recommend("u0", 5, where={"class": " Action "}, explain=False)) == action
    assert ids(rec.recommend("u0", 5, where={" class ": "Action"}, explain=False)) == action
    assert ids(rec.similar("i0", 5, where={"class": "Action\n"}, explain=False)) == ids(
        rec.similar("i0", 5, where=["class=Action"], explain=False)
    )
    with pytest.raises(RetrievalError, match="expected COLUMN=VALUE"):
        rec.recommend("u0", 5, where="class=", explain=False)
    with pytest.raises(RetrievalError, match=r"where=\{'class': ' '\}: the value is empty"):
        rec.recommend("u0", 5, where={"class": " "}, explain=False)


def test_filters_and_ids_of_another_type_are_refused_in_one_line(rec: Recommender):
    """``where=[("class", "Action")]`` raised ``AttributeError: 'tuple' object has no attribute
    'column'``, ``where=5`` and ``exclude=5.0`` a ``TypeError`` (not iterable): not the
    :class:`RetrievalError` of every other bad input (the HTTP service's 400)."""
    with pytest.raises(RetrievalError, match=r"where: expected 'COLUMN=VALUE' strings .* got tuple \('class', 'Action'\)"):
        rec.recommend("u0", 3, where=[("class", "Action")], explain=False)
    with pytest.raises(RetrievalError, match="where: expected 'COLUMN=VALUE' strings .* got int 5"):
        rec.similar("i0", 3, where=5, explain=False)
    with pytest.raises(RetrievalError, match="where: expected .* got NoneType None"):
        rec.recommend("u0", 3, where=["class=Action", None], explain=False)
    with pytest.raises(RetrievalError, match="expected an id .* or a list of ids, got float 5.0"):
        rec.recommend("u0", 3, exclude=5.0, explain=False)
    with pytest.raises(RetrievalError, match="expected an id .* or a list of ids, got float"):
        rec.recommend_for_new_user(liked=1.0, k=3, explain=False)
    # what was accepted still is: one id or filter, several, None, a mapping, a generator
    plain = ids(rec.recommend("u0", 3, where=("class=Action",), exclude=np.array(["i6"]), explain=False))
    assert plain == ids(rec.recommend("u0", 3, where=(f for f in ["class=Action"]), exclude="i6", explain=False))
    assert "i6" not in plain and len(plain) == 3


def test_a_list_given_for_one_user_is_named_as_such(rec: Recommender):
    """``recommend(["u0"])`` said "unknown user '['u0']'" (the list's text looked up as an id)."""
    with pytest.raises(RetrievalError, match=r"expected one user id \(a string or an integer\), got list \['u0'\]; "
                                             r"for several users, the batch methods \(recommend_batch, predict_pairs\)"):  # fmt: skip
        rec.recommend(["u0"], 3, explain=False)
    with pytest.raises(RetrievalError, match=r"got float 1\.5$"):
        rec.predict(1.5, ["i0"])
    assert ids(rec.recommend(np.str_("u0"), 3, explain=False)) == ids(rec.recommend("u0", 3, explain=False))
