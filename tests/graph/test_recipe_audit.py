"""Graph recipes, as a helper's audit checked them: the refusals it added (each test failed
before its fix) for recipe values the builder would crash on or misread."""

import re

import pytest

from kgrec.data import load_dataset
from kgrec.errors import ConfigError
from kgrec.graph import GraphRecipe, build_graph, load_recipe, recipe_from_dict, resolve_recipe

INTER = "user_id:token|item_id:token\nu1|i1"


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("field", ["release.year", "cut[1]", "2020"])
def test_an_item_name_field_that_format_cannot_look_up_is_refused_at_its_line(atomic, tmp_path, field):
    item = f"item_id:token|title:token|{field}:token\ni1|Heat|1995"
    films = load_dataset(atomic(name="films", inter=INTER, item=item))
    path = write(tmp_path, f"kg: false\nusers: true\nitem_name: '{{title}} ({{{field}}})'\n")
    expected = f"{path}:3:1: recipe item_name: '{{{field}}}' names column '{field}'"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}"):
        resolve_recipe(films, path)  # before: accepted, and the build failed with a KeyError or ValueError
    with pytest.raises(ConfigError, match="item_name"):
        build_graph(films, recipe_from_dict({"kg": False, "users": True, "item_name": f"{{{field}}}"}))


def test_an_item_name_column_with_a_plain_name_still_names_the_items(atomic):
    item = "item_id:token|title:token|release_year:token\ni1|Heat|1995"
    films = load_dataset(atomic(name="films", inter=INTER, item=item))
    kg = build_graph(films, recipe_from_dict({"kg": False, "users": True, "item_name": "{title} ({release_year})"}))
    assert kg.names[0] == "Heat (1995)"


@pytest.mark.parametrize(("text", "value"), [("0", "0"), ("no", "False"), ("[]", r"\[\]"), ("{}", r"\{\}")])
def test_an_item_name_that_is_no_text_is_refused_not_read_as_empty(tmp_path, text, value):
    path = write(tmp_path, f"item_name: {text}\n")
    with pytest.raises(ConfigError, match=rf"^{path}:1:1: item_name: {value}: expected a format string"):
        load_recipe(path)  # before: the default names, as if the key were not there


def test_an_empty_item_name_is_the_default(tmp_path):
    assert load_recipe(write(tmp_path, "item_name:\n")) == load_recipe(write(tmp_path, "item_name: ''\n")) == GraphRecipe()


@pytest.mark.parametrize("key", ["allow", "deny"])
def test_a_recipe_built_with_one_pattern_string_is_refused_not_read_per_character(key):
    with pytest.raises(ConfigError, match=rf"^{key}: 'film\.\*': expected a tuple of relation names or patterns") as error:
        GraphRecipe(**{key: "film.*"})  # before: allow kept every relation (its '*' character matches any)
    assert error.value.key == key
    assert getattr(GraphRecipe(**{key: ("film.*",)}), key) == ("film.*",)
