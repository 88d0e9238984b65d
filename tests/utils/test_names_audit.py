"""Typed titles and misspelt names: Unicode forms, case folding, articles, ties (an audit's findings)."""

from __future__ import annotations

import unicodedata

from kgrec.utils.names import TitleIndex, closest, did_you_mean, titles_matching


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_titles_matching_reads_titles_in_either_unicode_form_and_folds_case_fully():
    """Its first pass compared ``lower()`` strings: a decomposed title was missed whenever a
    composed one matched, and what "starts with" the text was judged on raw code points (an
    NFD "Amélie", "STRASSE" for "Straße"), so the title that starts with it came second."""
    assert titles_matching("Amélie", [nfd("Amélie (2001)"), "Amélie 2"]) == [0, 1]  # it found 1 alone
    poulain = ["Le Fabuleux Destin d'Amélie Poulain (2001)", "Amélie (2001)"]
    assert titles_matching(nfd("Amélie"), poulain) == [1, 0] == titles_matching("Amélie", poulain)
    assert titles_matching("Amélie", [nfd(t) for t in poulain]) == [1, 0]
    strasse = ["Die Straße der Sehnsucht", "Straße (1990)"]
    assert titles_matching("STRASSE", strasse) == [1, 0] == titles_matching("straße", strasse)
    ids = ["a", "b"]
    assert did_you_mean(nfd("Amélie"), ids, poulain) == (
        "; by title, did you mean b \"Amélie (2001)\" or a \"Le Fabuleux Destin d'Amélie Poulain (2001)\""
    )


def test_a_turkish_title_typed_in_capitals_is_found():
    """Turkish writes the capital of dotless "ı" as "I", which case folding turns into "i": "KIRK"
    found neither "Kırk (1999)" nor a suggestion ("İstanbul" in capitals was found already)."""
    titles = ["Kırk (1999)", "İstanbul Hatırası (2005)"]
    index = TitleIndex(titles)
    assert index.lookup("KIRK") == [0] and index.lookup("kirk (1999)") == [0] and index.lookup("Kırk") == [0]
    assert index.lookup("ISTANBUL HATIRASI") == [1] and index.lookup("istanbul hatirasi") == [1]
    assert titles_matching("kirk", titles) == [0] and titles_matching("HATIRASI", titles) == [1]


def test_a_leading_l_apostrophe_is_an_article_like_the_moved_one():
    """MovieLens files "L'Atalante" as "Atalante, L' (1934)": the moved "L'" was set aside, the
    leading one typed by a user was not, so the natural spelling found nothing."""
    titles = ["Atalante, L' (1934)", "Eclisse, L' (1962)", "L'Auberge espagnole (2002)", "La Haine (1995)"]
    index = TitleIndex(titles)
    assert index.lookup("L'Atalante") == [0] and index.lookup("l\u2019eclisse (1962)") == [1]
    assert index.lookup("L'Auberge espagnole") == [2] and index.lookup("auberge espagnole") == [2]
    assert index.lookup("la haine") == [3] and index.lookup("L") == [] and index.lookup("L'") == []
    assert titles_matching("l'atalante", titles) == [0]


def test_a_name_that_differs_in_case_only_from_several_suggests_the_same_one_whatever_their_order():
    """The first case-only match in the choices' order was suggested: for a set of column names,
    an order that changes from one run to the next (string hashing is salted)."""
    for choices in (["TITLE", "title"], ["title", "TITLE"]):
        assert closest("Title", choices) == " (did you mean 'title'?)"
    for choices in (["Genre", "GENRE", "genrE"], ["genrE", "GENRE", "Genre"]):
        assert closest("genre", choices) == " (did you mean 'Genre'?)"  # 'genrE' ties it on difflib's ratio


def test_a_title_typed_with_its_article_in_front_and_its_year_is_found():
    """A moved article was set aside only at the very end of a title, never before its year, so
    "The Godfather (1972)" (how the film is written, year and all) found no "Godfather, The (1972)"."""
    titles = ["Godfather, The (1972)", "Lion King, The (1994)", "Misérables, Les (1995)", "Godfather: Part II, The (1974)"]
    index = TitleIndex(titles)
    assert index.lookup("The Godfather (1972)") == [0] and index.lookup("the lion king 1994") == [1]
    assert index.lookup("Les Misérables (1995)") == [2] and index.lookup("The Godfather: Part II (1974)") == [3]
    assert index.lookup("The Godfather (1974)") == [] and index.lookup("godfather the 1972") == []  # the year, the words still count
