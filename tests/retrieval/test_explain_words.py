"""Text explanations (``search``): which query words match an item's title and columns."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.retrieval.catalog import Catalog
from kgrec.retrieval.explain import Explainer, same_word, text_words

TITLES = ["Animal House (1978)", "Interview with the Vampire (1994)", "Roman Holiday (1953)",
          "Café au Lait (1993)", "Nénette et Boni (1996)", "Über Goober (2004)", "Toy Story (1995)"]  # fmt: skip
GENRES = [["Comedy"], ["Drama", "Horror"], ["Romance"], ["Comedy"], ["Drama"], ["Documentary"], ["Animation", "Comedy"]]


@pytest.fixture
def explainer() -> Explainer:
    """An explainer over a catalog of seven titled items with genres (no graph)."""
    n = len(TITLES)
    catalog = Catalog(
        [str(i) for i in range(n)], TITLES, np.eye(n, dtype=np.float32),
        {"movie_title": [t.rsplit(" (", 1)[0].split() for t in TITLES], "class": GENRES},
        {"movie_title": "token_seq", "class": "token_seq"}, n_base=n,
    )  # fmt: skip
    return Explainer(None, catalog)


def why(explainer: Explainer, query: str, title: str) -> str:
    return explainer.for_text(query, TITLES.index(title), 0.5).text


@pytest.mark.parametrize(
    ("query", "title"),
    [("animal", "Toy Story (1995)"), ("interstellar", "Interview with the Vampire (1994)"),
     ("romantic", "Roman Holiday (1953)"), ("dramatic", "Nénette et Boni (1996)")],
)  # fmt: skip
def test_a_shared_beginning_is_no_match(explainer: Explainer, query: str, title: str):
    """The 5-letter prefix "stem" made 'animal' ~ Animation, 'interstellar' ~ Interview."""
    assert why(explainer, query, title) == "no query word in its title or columns; text-encoder cosine 0.500"


def test_the_same_word_up_to_an_english_ending_matches(explainer: Explainer):
    assert why(explainer, "animated", "Toy Story (1995)") == "matches 'animated' ~ Genres: Animation"
    assert why(explainer, "comedies", "Café au Lait (1993)") == "matches 'comedies' ~ Genres: Comedy"
    assert why(explainer, "holidays", "Roman Holiday (1953)") == "matches 'holidays' ~ title: Roman Holiday (1953)"
    assert why(explainer, "vampires", "Interview with the Vampire (1994)").startswith("matches 'vampires' ~ title")


@pytest.mark.parametrize(
    ("query", "title", "word"),
    [("café", "Café au Lait (1993)", "café"), ("Über", "Über Goober (2004)", "über"),
     ("Nénette", "Nénette et Boni (1996)", "nénette"), ("cafe", "Café au Lait (1993)", "cafe")],
)  # fmt: skip
def test_words_are_unicode_and_compared_without_accents(explainer: Explainer, query: str, title: str, word: str):
    """The ASCII-only tokenizer cut 'café' to 'caf', 'Über' to 'ber', 'Nénette' to 'nette'."""
    assert why(explainer, query, title) == f"matches '{word}' ~ title: {title}"


def test_same_word_and_text_words():
    assert text_words("Nénette et Boni (1996), CAFÉ") == ["nénette", "et", "boni", "1996", "café"]
    for a, b in [("film", "films"), ("comedies", "comedy"), ("loved", "love"), ("starring", "star"),
                 ("wars", "war"), ("thrillers", "thriller"), ("animated", "animation")]:  # fmt: skip
        assert same_word(a, b) and same_word(b, a), (a, b)
    for a, b in [("animal", "animation"), ("interstellar", "interview"), ("romantic", "roman"),
                 ("early", "ear"), ("mis", "miss"), ("being", "bee"),
                 ("miss", "mission"), ("moth", "mother"), ("jam", "james"), ("tim", "times"), ("corn", "corner")]:  # fmt: skip
        assert not same_word(a, b) and not same_word(b, a), (a, b)
