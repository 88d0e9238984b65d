"""Bad input to the query commands and the Python API: a batch's ``--out`` that is its own
input file, a batch whose ``--where`` leaves no item, a ``--refine`` FAISS cannot read back, a
text with no word, ``where=None`` / ``exclude=None``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval import IndexConfig, Recommender, VectorIndex, load_index
from tests.retrieval.test_cli_query import run_cli
from tests.retrieval.test_index import clustered


@pytest.mark.parametrize("command", ["recommend", "similar"])
def test_an_out_that_is_the_batchs_own_ids_file_is_refused(trained_run: Path, tmp_path: Path, capsys, command: str):
    """``--out users.txt --users-file users.txt`` replaced the ids with the results (status 0)."""
    ids = tmp_path / "ids.txt"
    ids.write_text("u0\nu1\n" if command == "recommend" else "i0\ni1\n", encoding="utf-8")
    before = ids.read_bytes()
    option = "--users-file" if command == "recommend" else "--items-file"
    code, out, err = run_cli(capsys, command, trained_run, option, ids, "-k", "2", "--no-progress",
                             "--out", tmp_path / "." / "ids.txt")  # fmt: skip
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"kgrec: error: --out {tmp_path / 'ids.txt'} is the {option} itself: writing the results would replace the "
        f"ids it holds; give another file, e.g. {tmp_path / 'results.jsonl'}"
    ]
    assert ids.read_bytes() == before


def test_a_batch_whose_filter_matches_no_item_says_so(trained_run: Path, tmp_path: Path, capsys):
    """A misspelt ``--where`` in batch mode wrote every line's results empty without a word."""
    out = tmp_path / "all.jsonl"
    code, _, err = run_cli(capsys, "similar", trained_run, "--all-items", "-k", "2", "--where", "class=Acton",
                           "--no-progress", "--out", out)  # fmt: skip
    assert code == 0 and all('"results": []' in line for line in out.read_text().splitlines())
    assert "note: no items qualify: class=Acton matches no item (did you mean 'Action'?); every result list is empty" in err
    code, _, err = run_cli(capsys, "recommend", trained_run, "--all-users", "-k", "2", "--where", "class=Action",
                           "--no-progress", "--out", out)  # fmt: skip
    assert code == 0 and "no items qualify" not in err  # a filter that keeps items: nothing to say


def test_a_refine_factor_faiss_cannot_read_back_is_refused(tmp_path: Path):
    """``kgrec index build --kind ivfpq --refine 100000`` saved an index that every later query
    failed to read (FAISS keeps the factor within 1..1000)."""
    with pytest.raises(RetrievalError, match=r"index refine: expected at most 1000 \(FAISS's limit\), got 1001"):
        IndexConfig(kind="ivfpq", refine=1001)
    vectors = clustered(400, 16)
    index = VectorIndex.build(vectors, config=IndexConfig(kind="ivfpq", refine=1000))
    index.save(tmp_path / "index", "sha")
    loaded, _ = load_index(tmp_path / "index")
    np.testing.assert_array_equal(loaded.search(vectors[:3], 5)[1], index.search(vectors[:3], 5)[1])


@pytest.mark.parametrize("text", ["???", "... !!", " -- "])
def test_a_text_without_any_word_is_refused(text_run: Path, capsys, text: str):
    """``kgrec search RUN '???'`` ranked items for it as if it were a query (and a new user's
    ``--likes-text '...'`` recommended from it)."""
    rec = Recommender.open(text_run)
    with pytest.raises(RetrievalError, match="has no words"):
        rec.search(text, k=3)
    with pytest.raises(RetrievalError, match="has no words"):
        rec.recommend_for_new_user(likes_text=text, k=3)
    code, out, err = run_cli(capsys, "search", text_run, text, "-k", "3")
    assert code == 2 and out == ""
    assert err.strip() == (f"kgrec: error: the query text {text.strip()!r} has no words (no letter or digit, in any "
                           f"script): give some words, e.g. \"animated film for children\"")  # fmt: skip
    assert rec.search("Film 17 ?", k=1, explain=False)[0].item_id == "i17"  # words beside punctuation still count


def test_none_for_where_exclude_or_liked_is_none_given(trained_run: Path):
    """``where=None`` / ``exclude=None`` (the way an optional argument is passed on) raised a
    TypeError traceback; it means no filter, as the default ``()`` does."""
    rec = Recommender.open(trained_run)
    plain = rec.recommend("u0", 3, explain=False)
    assert rec.recommend("u0", 3, where=None, exclude=None, explain=False) == plain
    assert rec.similar("i0", 3, where=None, exclude=None, explain=False) == rec.similar("i0", 3, explain=False)
    with pytest.raises(RetrievalError, match=r"a new user needs liked items \(--liked ITEM; liked= in Python\) or a text "
                                             r"\(--likes-text TEXT; likes_text=\)"):  # it named the options alone
        rec.recommend_for_new_user(liked=None, likes_text=None, k=3)
    with pytest.raises(RetrievalError, match="no items to remove"):
        rec.remove_items(None)
