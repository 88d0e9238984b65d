import numpy as np
import pytest

from kgrec.data import load_dataset
from kgrec.errors import ConfigError
from kgrec.graph import ENTITY, ITEM, USER, GraphRecipe, build_graph, recipe_from_dict


def triples(kg):
    """The graph's triples as readable (head key, relation, tail key) tuples."""
    return {
        (str(kg.keys[h]), str(kg.relation_names[r]), str(kg.keys[t]))
        for h, r, t in zip(kg.head, kg.relation, kg.tail, strict=True)
    }


def test_items_are_the_first_nodes_in_dataset_order_with_linked_entities_merged(toy, build):
    kg = build()
    assert kg.n_items == 6 and list(kg.keys[:6]) == list(toy.items)
    assert list(kg.node_type) == [ITEM] * 6 + [ENTITY] * 3
    assert not {"e1", "e2", "e3", "e4", "e5"} & set(kg.keys)  # merged into their items
    assert ("i1", "film.film.directed_by", "d1") in triples(kg)
    assert kg.head.dtype == np.int64 and kg.counts()["triples"] == 5


def test_nodes_have_readable_names(build):
    kg = build(attributes=[{"column": "class", "relation": "item.genre"}])
    names = dict(zip(kg.keys, kg.names, strict=True))
    assert names["i1"] == "Alpha" and names["d1"] == "d1" and names["item.genre=Comedy"] == "Comedy"


def test_unlinked_item_is_its_own_node_and_gets_attribute_edges(build):
    kg = build(attributes=[{"column": "class", "relation": "item.genre"}])
    assert ("i6", "item.genre", "item.genre=Action") in triples(kg)


def test_attribute_relations_with_decade_transform(atomic):
    folder = atomic(
        name="films",
        inter="user_id:token|item_id:token\nu|a\nu|b",
        item="item_id:token|title:token_seq|year:token|genres:token_seq\na|Old Film|1957|Drama\nb|New Film||Comedy Drama",
    )
    recipe = recipe_from_dict(
        {
            "kg": False,
            "attributes": [{"column": "genres", "relation": "item.genre"}, {"column": "year", "relation": "item.decade", "transform": "decade"}],
            "item_name": "{title} ({year})",
        }
    )  # fmt: skip
    kg = build_graph(load_dataset(folder), recipe)
    assert triples(kg) == {
        ("a", "item.genre", "item.genre=Drama"),
        ("b", "item.genre", "item.genre=Comedy"),
        ("b", "item.genre", "item.genre=Drama"),
        ("a", "item.decade", "item.decade=1950s"),
    }
    assert list(kg.names[:2]) == ["Old Film (1957)", "New Film"]  # missing year: the plain title
    titles = recipe_from_dict({"kg": False, "attributes": [{"column": "title", "relation": "item.decade", "transform": "decade"}]})
    with pytest.raises(ConfigError, match=r"recipe attribute column 'title' with transform decade: no value of 'films' reads "
                                          r"as a year \(it has 'Old', 'Film', 'New'\), so item.decade would have no triple") as error:
        build_graph(load_dataset(folder), titles)  # before: a relation with no triple, and no word of it
    assert error.value.key == "attributes[0].transform"


def test_duplicate_triples_are_merged(atomic):
    kg_text = "head_id:token|relation_id:token|tail_id:token\ne1|r|x\ne1|r|x\nx|r|e1\ne1|r|x"
    folder = atomic(
        inter="user_id:token|item_id:token\nu|i1", kg=kg_text, link="item_id:token|entity_id:token\ni1|e1"
    )
    kg = build_graph(load_dataset(folder), GraphRecipe())
    assert triples(kg) == {("i1", "r", "x"), ("x", "r", "i1")}


def test_inverse_adds_a_reversed_inv_relation_for_each_relation(build):
    plain, kg = build(), build(inverse=True)
    assert kg.n_triples == 2 * plain.n_triples
    assert list(kg.relation_names[2:]) == [n + ".inv" for n in kg.relation_names[:2]]
    assert list(kg.inverse_of) == [-1, -1, 0, 1]
    assert ("d1", "film.film.directed_by.inv", "i1") in triples(kg)


def test_min_degree_drops_rare_entities_but_never_items(build):
    kg = build(min_degree=2)  # d2 has one neighbour (i3); d1 and a1 have two
    assert "d2" not in set(kg.keys) and {"d1", "a1"} <= set(kg.keys)
    assert kg.n_items == 6 and kg.n_triples == 4  # i3 stays, without edges


def test_min_degree_notes_the_items_it_leaves_without_edges(toy):
    notes: list[str] = []
    build_graph(toy, recipe_from_dict({"min_degree": 2}), notes=notes)  # i3's only entity, d2, is dropped
    assert notes == [
        "min_degree 2 dropped 1 of 3 entities (fewer than 2 distinct neighbours) and 1 of 5 triples",  # it said nothing
        "min_degree 2 dropped every entity of 1 of 6 items (16.7%), which now have no edge in the graph; "
        "lower min_degree to keep them linked",
    ]  # before: nothing said
    kept: list[str] = []
    build_graph(toy, recipe_from_dict({"min_degree": 1}), notes=kept)
    assert kept == []


def test_allow_and_deny_filter_relations_by_name_or_pattern(build):
    allowed = build(allow=["*.directed_by"])
    assert set(allowed.relation_names) == {"film.film.directed_by"} and allowed.n_triples == 3
    assert "a1" not in set(allowed.keys)  # an entity left without triples is not a node
    denied = build(deny=["film.film.directed_by"])
    assert set(denied.relation_names) == {"film.film.starring"} and denied.n_triples == 2


def test_items_sharing_one_entity_all_get_its_triples(atomic):
    folder = atomic(
        inter="user_id:token|item_id:token\nu|i1\nu|i2",
        kg="head_id:token|relation_id:token|tail_id:token\ne|r|x\ny|s|e",
        link="item_id:token|entity_id:token\ni1|e\ni2|e",
    )
    kg = build_graph(load_dataset(folder), GraphRecipe())
    assert triples(kg) == {("i1", "r", "x"), ("i2", "r", "x"), ("y", "s", "i1"), ("y", "s", "i2")}


def test_user_edges_come_from_the_training_split_only(split_dataset):
    dataset = load_dataset(split_dataset)
    kg = build_graph(dataset, recipe_from_dict({"kg": False, "users": True, "inverse": True}))
    assert kg.n_users == 2 and list(kg.node_type[kg.user_offset :]) == [USER, USER]
    interacted = kg.relation == kg.relation_id("interacted")
    pairs = {
        (str(kg.keys[h]), str(kg.keys[t]))
        for h, t in zip(kg.head[interacted], kg.tail[interacted], strict=True)
    }
    assert pairs == {("u1", "i1"), ("u1", "i2"), ("u2", "i3")}
    held_out = {("u1", "i3"), ("u2", "i1")}  # valid and test pairs
    edges = {(str(kg.keys[h]), str(kg.keys[t])) for h, t in zip(kg.head, kg.tail, strict=True)}
    assert not held_out & edges and not {(i, u) for u, i in held_out} & edges
    assert kg.names[kg.user_offset] == "user u1"


def test_recipe_that_does_not_fit_the_dataset_is_refused(toy, split_dataset):
    with pytest.raises(ConfigError, match="'genre' is not an item column of 'toy'"):
        build_graph(toy, recipe_from_dict({"attributes": [{"column": "genre", "relation": "g"}]}))
    with pytest.raises(ConfigError, match=r"has no split\.kg"):
        build_graph(load_dataset(split_dataset), GraphRecipe())
    with pytest.raises(ConfigError, match="item_name"):
        build_graph(toy, recipe_from_dict({"item_name": "{nope}"}))
    column = next(iter(toy.item_feature_types))
    with pytest.raises(ConfigError, match="without format specs or conversions"):
        build_graph(toy, recipe_from_dict({"item_name": f"{{{column}:.0f}}"}))


def test_relation_name_clash_is_refused(build):
    with pytest.raises(ConfigError, match=r"'film.film.starring' is defined twice .*; rename the attribute \(a deny pattern would drop both\)$"):
        build(attributes=[{"column": "class", "relation": "film.film.starring"}])


def test_attribute_value_applies_the_recipe_transform_to_the_text_form():
    from kgrec.graph.build import attribute_value
    from kgrec.graph.recipe import AttributeRelation

    decade = AttributeRelation(column="release_year", relation="decade", transform="decade")
    plain = AttributeRelation(column="class", relation="genre")
    assert attribute_value(decade, 1995.0) == "1990s" and attribute_value(decade, "2001") == "2000s"
    assert attribute_value(decade, float("nan")) == "" and attribute_value(decade, "unknown") == ""
    assert attribute_value(decade, float("inf")) == "" and attribute_value(decade, "-inf") == ""
    assert attribute_value(plain, " Comedy ") == "Comedy" and attribute_value(plain, 3.0) == "3"


def test_relation_filters_leaving_no_relation_are_refused(build):
    with pytest.raises(ConfigError, match=r"^recipe allow \['flim\.\*'\] matches none of the KG relations of 'toy'"):
        build(allow=["flim.*"])
    with pytest.raises(ConfigError, match=r"^recipe deny \['\*'\] drops every one of the KG relations of 'toy'"):
        build(deny=["*"])


def test_a_recipe_whose_graph_would_have_no_triples_is_refused(build, atomic):
    with pytest.raises(ConfigError, match=r"^the recipe asks for relations but the graph built from 'toy' would have "
                       r"no triples \(5 KG triples; min_degree 9 dropped all 5\); lower min_degree$"):  # fmt: skip
        build(min_degree=9)
    blank = load_dataset(atomic(name="blank", inter="user_id:token|item_id:token\nu|i1", item="item_id:token|tags:token_seq\ni1|"))
    recipe = recipe_from_dict({"kg": False, "attributes": [{"column": "tags", "relation": "item.tag"}]})
    with pytest.raises(ConfigError, match=r"^recipe attribute column 'tags' has no value in any item of 'blank', so item.tag "
                       r"would have no triple"):  # fmt: skip
        build_graph(blank, recipe)


def test_without_a_recipe_a_dataset_without_kg_gets_its_multi_valued_columns(atomic):
    """``build_graph(ds)`` built with ``GraphRecipe()`` (KG triples only), refused a dataset
    without a ``.kg`` and advised ``kg: false``, which builds a graph without edges; training
    uses :func:`default_recipe` (its multi-valued item columns as relations), and now so does
    the library call. The refusal of ``GraphRecipe()`` names the columns."""
    from kgrec.graph import default_recipe

    header = "user_id:token|item_id:token"
    folder = atomic(
        name="shop",
        item="item_id:token|title:token|tags:token_seq\ni1|One|red wool\ni2|Two|red\ni3|Three|wool",
        train_inter=f"{header}\nu1|i1\nu1|i2\nu2|i3",
        valid_inter=f"{header}\nu1|i3",
        test_inter=f"{header}\nu2|i1",
    )
    ds = load_dataset(folder)
    kg = build_graph(ds)
    assert {str(r).removesuffix(".inv") for r in kg.relation_names} == {"item.tags"}
    assert kg.n_triples == build_graph(ds, default_recipe(ds)).n_triples > 0
    with pytest.raises(ConfigError, match=r"has no shop\.kg; set kg: false and make its multi-valued item columns "
                                          r"relations under attributes \(tags\), as the default recipe does"):  # fmt: skip
        build_graph(ds, GraphRecipe())
