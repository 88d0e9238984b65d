import pytest

from kgrec.errors import GraphError
from kgrec.graph import explain_paths, find_paths, format_path, short_relation


def test_explain_finds_the_shared_director(build):
    kg = build()
    assert explain_paths(kg, "i1", "i2") == ["Alpha -directed_by-> d1 <-directed_by- Beta"]


def test_paths_are_structured_for_reuse(build):
    kg = build(attributes=[{"column": "class", "relation": "item.genre"}])
    paths = find_paths(kg, kg.item_node("i1"), kg.item_node("i2"), n=5)
    assert [len(p) for p in paths][:2] == [2, 2]  # via d1 and via Comedy, fewest hops first
    assert len(find_paths(kg, kg.item_node("i1"), kg.item_node("i2"), n=5, max_hops=2)) == 2
    first = paths[0]
    assert first.nodes[0] == kg.item_node("i1") and first.hops[0].forward and not first.hops[1].forward
    assert kg.item_node(" i1 ") == kg.item_node("i1")  # an id pasted with spaces, as the catalog reads it
    assert format_path(kg, first, short=False).startswith("Alpha -")


def test_rarer_middle_node_ranks_first(build):
    kg = build(attributes=[{"column": "class", "relation": "item.genre"}])
    # i1 (Action Comedy) and i5 (Drama Comedy) share Comedy (3 items); i1 and i4 share Action (3 items)
    lines = explain_paths(kg, "i4", "i5", n=3)
    assert lines[0] == "Delta -starring-> a1 <-starring- Epsilon"  # a1 has 2 neighbours, fewer than any genre


def test_unconnected_items_have_no_path(build):
    assert explain_paths(build(), "i1", "i6") == []


def test_unknown_or_repeated_items_are_refused(build):
    kg = build()
    with pytest.raises(GraphError, match="unknown item 'zz'"):
        explain_paths(kg, "zz", "i1")
    with pytest.raises(GraphError, match="unknown item 'gam'.*did you mean i3 \"Gamma\"$"):  # no title is this
        explain_paths(kg, "gam", "i1")
    assert explain_paths(kg, "gamma", "i1") == explain_paths(kg, "i3", "i1")  # a title names its item
    with pytest.raises(GraphError, match="same item"):
        explain_paths(kg, "i1", "alpha")


def test_generated_inverse_relations_are_not_shown_when_the_original_exists(build):
    assert explain_paths(build(inverse=True), "i1", "i2") == ["Alpha -directed_by-> d1 <-directed_by- Beta"]


def test_excluded_relations_are_not_used(build):
    kg = build(attributes=[{"column": "class", "relation": "item.genre"}])
    paths = find_paths(kg, kg.item_node("i1"), kg.item_node("i2"), n=5, exclude=["item.*"])
    assert [format_path(kg, p) for p in paths] == ["Alpha -directed_by-> d1 <-directed_by- Beta"]


@pytest.mark.parametrize("exclude", [["*.directed_by"], ["*.directed_by.inv"]])
def test_excluding_a_relation_excludes_its_generated_inverse(build, exclude):
    kg = build(inverse=True)
    assert find_paths(kg, kg.item_node("i1"), kg.item_node("i2"), n=5, exclude=exclude) == []  # d1 was the link


def test_short_relation_keeps_the_last_segment():
    assert short_relation("film.film.directed_by") == "directed_by"
    assert short_relation("film.film.directed_by.inv") == "directed_by.inv"
    assert short_relation("interacted") == "interacted"


def test_short_relation_keeps_the_segments_that_tell_relations_apart():
    among = ["item.genre", "film.film.genre", "film.film.directed_by", "film.film.genre.inv"]
    assert short_relation("item.genre", among) == "item.genre"  # before: both were "genre"
    assert short_relation("film.film.genre", among) == "film.genre"
    assert short_relation("film.film.genre.inv", among) == "film.genre.inv"
    assert short_relation("film.film.directed_by", among) == "directed_by"
    assert short_relation("genre", ["genre", "item.genre"]) == "genre"
