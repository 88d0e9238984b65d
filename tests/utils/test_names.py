from kgrec.utils.names import TitleIndex, ambiguous_title, closest, did_you_mean, titles_matching

TITLES = ["Star Trek (1979)", "Lone Star (1996)", "Star Wars (1977)", "Return of the Jedi (1983)", "Star Wars Kid"]


def test_titles_holding_every_word_those_starting_with_the_text_first():
    assert titles_matching("star wars", TITLES) == [2, 4]
    assert titles_matching("STAR", TITLES) == [0, 2, 4, 1]  # "Lone Star" holds it but does not start with it
    assert titles_matching("star", TITLES, limit=2) == [0, 2]
    assert titles_matching("star", TITLES, among=[1, 3, 4]) == [4, 1]  # e.g. the active items only
    assert titles_matching("jedi return", TITLES) == [3]  # words in any order
    assert titles_matching("sith", TITLES) == [] and titles_matching("  ", TITLES) == []


def test_did_you_mean_ends_an_unknown_id_message():
    ids = ["1", "2", "3", "4", "5"]
    assert did_you_mean("star wars", ids, TITLES) == '; by title, did you mean 3 "Star Wars (1977)" or 5 "Star Wars Kid"'
    assert did_you_mean("42", ids, TITLES) == ""


def test_closest_names_the_choice_a_misspelt_key_was_meant_to_be():
    assert closest("transfrom", {"column", "relation", "transform"}) == " (did you mean 'transform'?)"
    assert closest("inverted", ["kg", "inverse", "users"]) == " (did you mean 'inverse'?)"
    assert closest("zzz", ["kg", "inverse"]) == ""
    # letter case alone: difflib's ratio is 0 for CLASS against class, so nothing was suggested
    assert closest("CLASS", ["age", "class", "glass"]) == " (did you mean 'class'?)"


def test_title_index_finds_the_items_a_title_names():
    titles = [*TITLES, "Cape Fear (1991)", "Cape Fear (1962)", "star   wars KID"]
    index = TitleIndex(titles)
    assert index.lookup("Star Wars (1977)") == [2] and index.lookup("  star WARS (1977) ") == [2]  # case, spacing aside
    assert index.lookup("star wars") == [2]  # no title is the text: one is once its "(1977)" is dropped
    assert index.lookup("Star Wars Kid") == [4, 7]  # exact titles first, even several
    assert index.lookup("Cape Fear") == [5, 6]
    assert index.lookup("Cape Fear", keep=[True] * 5 + [False, True, True]) == [6]  # e.g. the active items only
    assert index.lookup("Star Trek") == [0] and index.lookup("Star") == [] and index.lookup(" ") == []
    ids = [str(i) for i in range(len(titles))]
    assert ambiguous_title("Cape Fear", ids, titles, [5, 6]) == (
        "'Cape Fear' is the title of 2 items, 5 \"Cape Fear (1991)\" and 6 \"Cape Fear (1962)\"; give its id"
    )


def test_titles_are_found_with_punctuation_and_articles_aside_when_nothing_closer_is():
    titles = ["Godfather, The (1972)", "Godfather: Part II, The (1974)", "Lion King, The (1994)",
              "Schindler's List (1993)", "Star Wars (1977)", "Misérables, Les (1995)", "Toy Story (1995)",
              "Die Hard (1988)", "Man Who Knew Too Little, The (1997)", "Man Who Knew Too Much, The (1956)"]  # fmt: skip
    index = TitleIndex(titles)
    assert index.lookup("the godfather") == [0] and index.lookup("Godfather") == [0]
    assert index.lookup("The Godfather: Part II") == [1] and index.lookup("godfather part ii") == [1]
    assert index.lookup("the lion king") == [2] and index.lookup("lion king") == [2]  # they found nothing
    assert index.lookup("schindlers list") == [3] and index.lookup("Schindler\u2019s List") == [3]
    assert index.lookup("Star Wars:") == [4] and index.lookup("les miserables") == [5]
    assert index.lookup("toy story 1995") == [6] and index.lookup("die hard") == [7]
    assert index.lookup("hard") == [] and index.lookup("godfather 2") == [] and index.lookup("Star Wars (1978)") == []
    assert index.lookup("man who knew too") == []  # words missing are not a match, only punctuation and articles
    # suggestions, when no title is the text, read past punctuation and articles too
    assert titles_matching("Star Wars (1978)", titles) == [4] and titles_matching("schindlers", titles) == [3]
    assert titles_matching("the man who knew", titles) == [8, 9]
