from kgrec.utils.names import closest, did_you_mean, titles_matching

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
