"""What ``--where`` says when a filter matches no item (:meth:`Catalog.unmatched_filters`)."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.retrieval.catalog import Catalog


@pytest.fixture
def catalog() -> Catalog:
    """Three ml-100k-like items: a title of single words, a year as text (token), a year as a number."""
    features = {
        "movie_title": [["Star", "Wars"], ["Return", "of", "the", "Jedi"], ["Toy", "Story"]],
        "release_year": ["1977", "1983", "1995"],
        "year": [1977.0, 1983.0, 1995.0],
        "class": [["Sci-Fi", "War"], ["Sci-Fi"], ["Animation"]],
    }
    types = {"movie_title": "token_seq", "release_year": "token", "year": "float", "class": "token_seq"}
    return Catalog(["50", "181", "1"], ["Star Wars (1977)", "Return of the Jedi (1983)", "Toy Story (1995)"],
                   np.eye(3, dtype=np.float32), features, types, n_base=3)  # fmt: skip


def test_a_number_written_otherwise_than_a_text_column_holds_it(catalog: Catalog):
    """It said "(values from 1977 to 1995)" of 1995.0, as if 1995 were out of range."""
    assert catalog.unmatched_filters(["release_year=1995.0"]) == [
        "release_year=1995.0 matches no item (release_year holds text, compared as written, not as numbers: "
        "did you mean release_year=1995?)"
    ]
    assert catalog.where_mask(["release_year=1995"]).tolist() == [False, False, True]  # as suggested
    assert catalog.unmatched_filters(["release_year=1921"]) == [
        "release_year=1921 matches no item (values from 1977 to 1995)"
    ]  # a number the column does not hold: its range, as before
    assert catalog.unmatched_filters(["year=1995.0"]) == []  # a float column compares numbers


def test_several_words_asked_of_a_column_of_single_words(catalog: Catalog):
    """It said "(did you mean 'Stars'?)" of movie_title=Star Wars."""
    assert catalog.unmatched_filters(["movie_title=Star Wars"]) == [
        "movie_title=Star Wars matches no item (movie_title holds single words (tokens), and a filter matches one "
        "of them, never several: one filter per word, movie_title=Star and movie_title=Wars, keeps items with all "
        "of them)"
    ]
    assert catalog.where_mask(["movie_title=Star", "movie_title=Wars"]).tolist() == [True, False, False]
    assert catalog.unmatched_filters(["movie_title=Star Trek"]) == [
        "movie_title=Star Trek matches no item (movie_title holds single words (tokens), and a filter matches one "
        "of them, never several: give one word, e.g. movie_title=Star)"
    ]
    assert catalog.unmatched_filters(["class=Sci-Fy"]) == ["class=Sci-Fy matches no item (did you mean 'Sci-Fi'?)"]
