"""Item texts from an audit of templates: values kept whole where a missing one is tidied away,
format specs without a presentation type, column names that are not identifiers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.errors import ConfigError
from kgrec.text import TextConfig, item_texts

INTER = "user_id:token|item_id:token\nu|1\nu|2\nu|3\nu|4"
ITEM = """
item_id:token|movie_title:token_seq|release_year:token|class:token_seq|year:float|release-date:token
1|Monsters, Inc.||Animation|2001|2001-11-02
2|...And Justice for All||Drama|1979.0|
3|Who Framed Roger Rabbit ( )||Comedy|1988|1988-06-22
4|Heat|1995||1995|1995-12-15
"""


@pytest.fixture
def movies(atomic: Callable[..., Path]):
    return load_dataset(atomic(name="movies", inter=INTER, item=ITEM))


def _texts(dataset, template: str) -> dict[str, str]:
    return dict(zip(dataset.items.tolist(), item_texts(dataset, TextConfig(template=template)), strict=True))


@pytest.mark.parametrize(
    ("template", "item", "text"),
    [
        # the tidying of a missing year stripped the title's own "." and "...", and its "( )"
        ("{movie_title} ({release_year})", "1", "Monsters, Inc."),
        ("{movie_title} ({release_year})", "2", "...And Justice for All"),
        ("{movie_title} ({release_year})", "3", "Who Framed Roger Rabbit ( )"),
        ("{movie_title}. {release_year}", "1", "Monsters, Inc."),
        ("{release_year}: {movie_title}", "2", "...And Justice for All"),
        # the template's own separator after a value ending in one is still merged
        ("{movie_title} ({release_year}). Genres: {class}", "1", "Monsters, Inc. Genres: Animation"),
        ("{movie_title} ({release_year}). Genres: {class}", "4", "Heat (1995)"),
        ("{movie_title}, {class} ({release_year})", "1", "Monsters, Inc., Animation"),
    ],
)
def test_a_value_beside_a_missing_one_is_kept_whole(movies, template: str, item: str, text: str) -> None:
    assert _texts(movies, template)[item] == text


def test_format_spec_without_a_type_writes_whole_floats_without_point(movies) -> None:
    # "{year:>6}" gave "1995.0" where "{year}" gives "1995": the spec met the float itself
    texts = _texts(movies, "{year:>6}|{year:,}|{year:06}")
    assert texts["4"] == "  1995|1,995|001995"
    assert texts["2"] == "  1979|1,979|001979"


def test_format_spec_with_a_precision_and_no_type_still_formats_the_float(movies) -> None:
    assert _texts(movies, "{year:.3}")["4"] == format(1995.0, ".3")  # "2e+03", as Python writes it


def test_a_column_whose_name_is_not_an_identifier_can_be_named(movies) -> None:
    # "{release-date}" was refused as "attribute or index access", though str.format reads it as a key
    assert _texts(movies, "{movie_title}, released {release-date}")["4"] == "Heat, released 1995-12-15"


@pytest.mark.parametrize("template", ["{release.date}", "{release[0]}", "{movie_title.upper}"])
def test_attribute_or_index_access_is_still_refused(movies, template: str) -> None:
    with pytest.raises(ConfigError, match="plain column name"):
        item_texts(movies, TextConfig(template=template))
