"""Item texts from a template over the item columns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.errors import ConfigError
from kgrec.text import TextConfig, default_template, item_texts

INTER = """
user_id:token|item_id:token|rating:float
u1|1|5
u1|2|4
u2|1|3
u2|3|2
u3|4|1
"""
ITEM = """
item_id:token|movie_title:token_seq|release_year:token|class:token_seq
1|Toy Story|1995|Animation Children's Comedy
2|Schindler's List|1993|Drama War
3|Heat||Action
4|Nameless|1990|
"""


@pytest.fixture
def movies(atomic: Callable[..., Path]):
    return load_dataset(atomic(name="movies", inter=INTER, item=ITEM))


def test_default_template_uses_title_year_and_genres(movies) -> None:
    assert default_template(movies) == "{movie_title} ({release_year}). Genres: {class}"
    texts = item_texts(movies)
    assert texts[movies.item_index("1")] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert texts[movies.item_index("2")] == "Schindler's List (1993). Genres: Drama, War"


def test_missing_values_are_skipped_with_their_punctuation(movies) -> None:
    texts = item_texts(movies)
    assert texts[movies.item_index("3")] == "Heat. Genres: Action"
    assert texts[movies.item_index("4")] == "Nameless (1990)"


@pytest.mark.parametrize(
    ("template", "heat"),
    [
        ("{movie_title}: {release_year}", "Heat"),
        ("{movie_title} - Year: {release_year}", "Heat"),
        ("{movie_title}, year: {release_year}. Genres: {class}", "Heat. Genres: Action"),
        ("Year: {release_year}. {movie_title}", "Heat"),
        ("{movie_title}. A film everyone who loves the big screen should see: {release_year}",
         "Heat. A film everyone who loves the big screen should see"),  # too long for a label: kept whole
    ],
)
def test_only_the_label_of_a_missing_value_is_dropped(movies, template: str, heat: str) -> None:
    assert item_texts(movies, TextConfig(template=template))[movies.item_index("3")] == heat  # no year


def test_tag_lists_are_joined_with_commas_and_titles_with_spaces(atomic: Callable[..., Path]) -> None:
    item = "item_id:token|book_title:token_seq|genre_names:token_seq\n1|The Road|Drama Western"
    dataset = load_dataset(atomic(name="books", inter="user_id:token|item_id:token\nu|1", item=item))
    assert item_texts(dataset, TextConfig(template="{book_title}: {genre_names}")) == ["The Road: Drama, Western"]


def test_custom_template_renders_columns_and_item_id(movies) -> None:
    config = TextConfig(template="#{item_id}: {movie_title} | {class}")
    assert item_texts(movies, config)[movies.item_index("2")] == "#2: Schindler's List | Drama, War"


def test_unknown_column_names_it_and_the_available_ones(movies) -> None:
    with pytest.raises(ConfigError) as error:
        item_texts(movies, TextConfig(template="{movie_title} by {director}"))
    message = str(error.value)
    assert "'director'" in message
    for column in ("movie_title", "release_year", "class", "item_id"):
        assert column in message


@pytest.mark.parametrize("template", ["{movie_title", "{} film", "{movie_title.upper}"])
def test_malformed_template_is_a_config_error(movies, template: str) -> None:
    with pytest.raises(ConfigError):
        item_texts(movies, TextConfig(template=template))


def test_items_without_columns_fall_back_to_their_id(atomic: Callable[..., Path]) -> None:
    dataset = load_dataset(atomic(name="bare", inter=INTER))
    assert default_template(dataset) == "{item_id}"
    assert item_texts(dataset) == [str(t) for t in dataset.items]


@pytest.mark.parametrize(
    ("field", "value"), [("batch_size", 0), ("max_length", -1), ("finetune_layers", -1), ("model", "")]
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        TextConfig(**{field: value})
