"""Item texts from an audit of templates and the text cache: numbers, format specs, templates
that name no column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.errors import ConfigError
from kgrec.text import TextConfig, item_texts

INTER = "user_id:token|item_id:token\nu|1\nu|2\nu|3"
ITEM = """
item_id:token|title:token|price:float|year:float|scores:float_seq|release_year:token
1|Lamp|24999.95|1995|0.125 1234.5678|1995
2|Desk|NaN|NaN||
3|Chair|3.14159|2001.0|2|2001
"""


@pytest.fixture
def shop(atomic: Callable[..., Path]):
    return load_dataset(atomic(name="shop", inter=INTER, item=ITEM))


def _texts(dataset, template: str) -> dict[str, str]:
    return dict(zip(dataset.items.tolist(), item_texts(dataset, TextConfig(template=template)), strict=True))


def test_float_values_keep_every_digit_and_whole_numbers_lose_their_point(shop) -> None:
    # ':g' kept six significant digits: 24999.95 became "25000" and 1234.5678 "1234.57"
    texts = _texts(shop, "{title}: {price}, {year}, {scores}")
    assert texts["1"] == "Lamp: 24999.95, 1995, 0.125, 1234.5678"
    assert texts["3"] == "Chair: 3.14159, 2001, 2"
    assert texts["2"] == "Desk"


def test_format_spec_on_a_float_column_formats_the_number(shop) -> None:
    # the spec met the rendered text and was refused: "Unknown format code 'f' for object of type 'str'"
    texts = _texts(shop, "{title} costs {price:.2f} (from {year:d}); {scores:.1f}")
    assert texts["1"] == "Lamp costs 24999.95 (from 1995); 0.1, 1234.6"
    assert texts["3"] == "Chair costs 3.14 (from 2001); 2.0"
    assert texts["2"].startswith("Desk costs")  # missing numbers render as nothing, no "nan"
    assert "nan" not in texts["2"]


def test_format_spec_that_does_not_fit_its_column_names_the_column(shop) -> None:
    with pytest.raises(ConfigError, match=r"column 'release_year' holds text"):
        item_texts(shop, TextConfig(template="{title} ({release_year:d})"))


@pytest.mark.parametrize("template", ["title", "A product", "  "])
def test_template_naming_no_column_is_refused(shop, template: str) -> None:
    # every item got the same text, so the same text vector, and training went on without a word
    with pytest.raises(ConfigError, match=r"names no column.*\{title\}"):
        item_texts(shop, TextConfig(template=template))
