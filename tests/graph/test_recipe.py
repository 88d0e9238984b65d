from pathlib import Path

import pytest

from kgrec.errors import ConfigError
from kgrec.graph import GraphRecipe, load_recipe

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
        ("inverted: true", "unknown key 'inverted'"),
        ("min_degree: -1", "min_degree: -1: expected a non-negative integer"),
        ("users: 'yes please'", "users: 'yes please': expected true or false"),
        ("attributes: [{column: year, relation: r, transform: century}]", "transform: 'century'"),
        ("attributes: [{column: year}]", "attributes[1]: relation: None"),
        ("attributes: [{column: a, relation: r.inv}]", "reserved"),
        ("allow: [1, 2]", "allow: [1, 2]: expected a list"),
        ("kg: [", "not valid YAML"),
        ("- a list", "expected a mapping"),
    ],
)
def test_bad_recipes_are_refused_with_a_clear_message(tmp_path, text, message):
    with pytest.raises(ConfigError, match="recipe.yaml") as error:
        load_recipe(write(tmp_path, text))
    assert message in str(error.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(tmp_path / "none.yaml")
