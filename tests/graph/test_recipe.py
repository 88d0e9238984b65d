from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.errors import ConfigError
from kgrec.graph import (
    GraphRecipe,
    build_graph,
    default_recipe,
    load_recipe,
    recipe_from_dict,
    resolve_recipe,
)

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_shipped_ml100k_recipe_loads():
    recipe = load_recipe(ROOT / "graphs" / "ml-100k.yaml")
    assert [a.relation for a in recipe.attributes] == ["item.genre", "item.decade"]
    assert recipe.attributes[1].transform == "decade" and recipe.kg and not recipe.users


def test_empty_file_gives_the_defaults(tmp_path):
    assert load_recipe(write(tmp_path, "# nothing\n")) == GraphRecipe()


def test_hash_depends_on_content_not_formatting(tmp_path):
    a = load_recipe(write(tmp_path, "inverse: true\nmin_degree: 2\n"))
    b = load_recipe(write(tmp_path, "min_degree:   2   # comment\ninverse: yes\n"))
    assert a.sha256() == b.sha256() != GraphRecipe().sha256()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("inverted: true", "1:1: unknown key 'inverted' (did you mean 'inverse'?)"),
        ("kg: true\nmin_degree: -1", "2:1: min_degree: -1: expected a non-negative integer"),
        ("users: 'yes please'", "1:1: users: 'yes please': expected true or false"),
        ("attributes: [{column: year, relation: r, transform: century}]", "1:42: attributes[0]: transform: 'century'"),
        ("attributes: [{column: year}]", "1:14: attributes[0]: relation: None"),
        ("attributes:\n  - column: a\n    relation: b\n  - column: a\n    relation: r.inv", "5:5: attributes: relation name 'r.inv' is reserved"),
        ("attributes:\n  - {column: a, relation: r}\n  - {column: b, relation: r}", "3:17: attributes: relation 'r' is defined twice"),
        ("attributes:\n  - {column: a, relation: r, transfrom: decade}", "2:30: attributes[0]: unknown key 'transfrom' (did you mean 'transform'?)"),
        ("allow: [1, 2]", "1:1: allow: [1, 2]: expected a list"),
        ("kg: [", "not valid YAML"),
        ("- a list", "expected a mapping"),
    ],
)
def test_bad_recipes_are_refused_at_the_line_and_column_of_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match="recipe.yaml") as error:
        load_recipe(write(tmp_path, text))
    assert message in str(error.value)
    if message[0].isdigit():
        assert str(error.value).startswith(f"{tmp_path / 'recipe.yaml'}:{message}")


def test_a_recipe_asking_the_dataset_for_what_it_lacks_is_refused_at_its_line(toy, tmp_path):
    path = write(tmp_path, "kg: true\nattributes:\n  - column: clas\n    relation: item.genre\n")
    with pytest.raises(ConfigError) as error:
        resolve_recipe(toy, path)
    assert str(error.value).startswith(
        f"{path}:3:5: recipe attribute column 'clas' is not an item column of 'toy' (did you mean 'class'?) (have: "
    )
    path = write(tmp_path, "kg: true\nattributes:\n  - column: class\n    relation: item.decade\n    transform: decade\n")
    with pytest.raises(ConfigError, match=rf"^{path}:5:5: recipe attribute column 'class' with transform decade: no value "
                                          r"of 'toy' reads as a year"):  # fmt: skip
        resolve_recipe(toy, path)
    path = write(tmp_path, "kg: true\nitem_name: '{titel}'\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2:1: recipe item_name: '{{titel}}' is not an item column of 'toy' \(did you mean 'title'\?\)"):
        resolve_recipe(toy, path)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(tmp_path / "none.yaml")


def test_default_recipe_is_the_kg_alone_when_the_dataset_has_one(toy):
    assert default_recipe(toy) == GraphRecipe()
    recipe, source = resolve_recipe(toy)
    assert recipe == GraphRecipe() and source == (
        "none (no graphs/toy.yaml): the KG triples alone; the multi-valued item column class is not used: a recipe's "
        "attributes make it relations (graphs/README.md; as graphs/toy.yaml)"
    )  # it said "the KG triples alone", and a user's category column was left out without a word


def test_without_kg_the_multi_valued_item_columns_become_relations(atomic):
    item = "item_id:token|title:token_seq|plot:token_seq|tags:token_seq|brand:token\ni1|Red Shoe|A shoe|red shoes|acme"
    shop = load_dataset(atomic(name="shop", inter="user_id:token|item_id:token\nu1|i1", item=item))
    recipe, source = resolve_recipe(shop)
    assert not recipe.kg and [(a.column, a.relation) for a in recipe.attributes] == [("tags", "item.tags")]
    assert source.endswith("no KG triples, so the multi-valued item columns as relations (tags -> item.tags)")
    graph = build_graph(shop, recipe)
    assert sorted(graph.names[t] for t in graph.tail) == ["red", "shoes"]


def test_without_kg_or_multi_valued_columns_the_default_recipe_makes_no_relations(atomic):
    bare = load_dataset(atomic(name="bare", inter="user_id:token|item_id:token\nu1|i1"))
    recipe, source = resolve_recipe(bare)
    assert not recipe.makes_relations and GraphRecipe().makes_relations and GraphRecipe(kg=False, users=True).makes_relations
    assert source == "none (no graphs/bare.yaml), and bare has no KG triples and no multi-valued item columns"


def test_a_named_recipe_file_comes_first(toy, tmp_path):
    path = write(tmp_path, "kg: false\nusers: true\n")
    assert resolve_recipe(toy, path) == (GraphRecipe(kg=False, users=True), str(path))


def test_allow_matching_no_relation_is_refused_at_its_line_with_the_relations_there_are(toy, tmp_path):
    path = write(tmp_path, "kg: true\nallow: ['flim.*']\n")
    with pytest.raises(ConfigError) as error:
        resolve_recipe(toy, path)
    assert str(error.value) == (
        f"{path}:2:1: recipe allow ['flim.*'] matches none of the KG relations of 'toy' (did you mean 'film.*'?), "
        "so the graph would have no relations (have: 'film.film.directed_by', 'film.film.starring')"
    )


def test_a_deny_pattern_that_drops_nothing_gets_a_note(toy):
    from kgrec.graph.recipe import check_relation_filters

    recipe = recipe_from_dict({"kg": True, "users": True, "deny": ["film.film.starring", "film.flim.*", "interacted"]})
    notes = check_relation_filters(toy, recipe)
    assert notes == [
        "recipe deny pattern 'film.flim.*' matches none of the KG relations of 'toy' (did you mean 'film.film.*'?), "
        "so it drops nothing",
        "recipe deny pattern 'interacted' matches none of the KG relations of 'toy', so it drops nothing ('interacted', "
        "the user edges of users: true, is no KG relation: set users: false)",
    ]


def test_deny_dropping_every_relation_is_refused_at_its_line(toy, tmp_path):
    path = write(tmp_path, "attributes:\n  - {column: class, relation: item.genre}\ndeny: ['*']\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3:1: recipe deny \['\*'\] drops every one of the KG and attribute "
                       r"relations of 'toy', so the graph would have no relations \(have: 'film.film.directed_by', "
                       r"'film.film.starring', 'item.genre'\)$"):  # fmt: skip
        resolve_recipe(toy, path)
    path = write(tmp_path, "allow: ['film.*']\ndeny: ['film.film.*']\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2:1: recipe deny \['film.film.\*'\] drops every one of the KG "
                       r"relations of 'toy' that allow \['film.\*'\] keeps, so"):  # fmt: skip
        resolve_recipe(toy, path)


def test_an_allow_pattern_matching_nothing_beside_others_that_match_gives_a_note(toy):
    from kgrec.graph.recipe import check_relation_filters

    recipe = GraphRecipe(allow=("*.directed_by", "film.film.staring"))
    assert check_relation_filters(toy, recipe) == [
        "recipe allow pattern 'film.film.staring' matches none of the KG relations of 'toy' "
        "(did you mean 'film.film.starring'?); the other patterns keep 1 of 2"
    ]
    assert check_relation_filters(toy, GraphRecipe(allow=("film.*",), deny=("film.film.starring",))) == []
