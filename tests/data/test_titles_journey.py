"""Which item column is the title: a shop's ``product_name`` was not one, so every result showed
bare ids, ``--item "Bolt Waterproof Sock"`` found nothing and ``kgrec data info`` said nothing of
it. The names are an explicit list (``brand_name`` names no item), and the shipped datasets keep
their titles (the README's figures stand on them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.data.atomic import csv_header_hint, read_atomic
from kgrec.data.dataset import TITLE_COLUMNS, Dataset, Interactions, load_dataset
from kgrec.data.info import dataset_info, format_info
from kgrec.errors import DataError

#: The names recognised before: what the shipped datasets were titled by.
OLD_TITLE_COLUMNS = ("title", "movie_title", "book_title", "name", "item_name")


def items_dataset(columns: dict[str, str]) -> Dataset:
    """Two items with the given ``token`` / ``token_seq`` columns (each value ``column-row``)."""
    empty = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64))
    features = {c: [[f"{c}-{i}"] if kind == "token_seq" else f"{c}-{i}" for i in range(2)] for c, kind in columns.items()}
    return Dataset(
        name="items", path=Path("."), users=np.zeros(0, dtype=object), items=np.asarray(["P1", "P2"], dtype=object),
        train=empty, valid=empty, test=empty, split="none", item_features=features, item_feature_types=dict(columns),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("columns", "title"),
    [
        # the shipped datasets (scripts/prepare_*.py, the recbole ml-100k): unchanged
        (["movie_title", "release_year", "class"], "movie_title"),  # ml-100k
        (["movie_title", "release_year", "genre"], "movie_title"),  # ML-1M
        (["book_title", "book_author", "year", "publisher"], "book_title"),  # Book-Crossing
        (["title"], "title"),  # MIND
        # shops and other public data
        (["product_name", "brand_name", "category"], "product_name"),
        (["Product_Title", "description"], "Product_Title"),
        (["item_title", "price"], "item_title"),
        (["prod_name", "product_type_name", "product_group_name"], "prod_name"),  # H&M
        (["artist_name", "track_name", "album_name"], "track_name"),  # a track is the item, not its artist
        (["app_name", "title", "genres"], "title"),  # Steam: title first, as before
        (["brand_name", "artist_name", "album_name", "category_name", "description"], None),
    ],
)
def test_the_title_column(columns: list[str], title: str | None):
    dataset = items_dataset({c: "token" for c in columns})
    assert dataset.title_column() == title
    if title is not None:
        assert dataset.item_names() == [f"{title}-0", f"{title}-1"]


def test_the_shipped_datasets_keep_the_title_the_old_list_gave():
    """ml-100k, ML-1M, Book-Crossing and MIND: whichever of their columns the new names take,
    the first in list order is the old one's."""
    shipped = {
        "ml-100k": ["movie_title", "release_year", "class"],
        "ml-1m": ["movie_title", "release_year", "genre"],
        "bookcrossing": ["book_title", "book_author", "year", "publisher"],
        "mind": ["title"],
    }
    assert TITLE_COLUMNS[: len(OLD_TITLE_COLUMNS)] == OLD_TITLE_COLUMNS
    for name, columns in shipped.items():
        old = next((c for c in OLD_TITLE_COLUMNS if c in columns), None)
        assert old is not None and items_dataset({c: "token" for c in columns}).title_column() == old, name


def test_the_names_are_an_explicit_list_of_item_names():
    assert {"product_name", "product_title", "item_title", "track_name", "song_name"} <= set(TITLE_COLUMNS)
    for other in ("brand_name", "artist_name", "album_name", "category_name", "author_name", "user_name"):
        assert other not in TITLE_COLUMNS


def shop_info(folder: Path, items: str) -> dict:
    """``dataset_info`` of a two-item shop whose ``.item`` file is ``items``."""
    folder.mkdir()
    (folder / "shop.inter").write_text("user_id:token\titem_id:token\nu101\tP0045\nu101\tP0046\nu102\tP0045\n")
    (folder / "shop.item").write_text(items)
    return dataset_info(load_dataset(folder))


def test_data_info_names_the_title_column(tmp_path: Path):
    info = shop_info(tmp_path / "shop", "item_id:token\tproduct_name:token\tcategory:token_seq\n"
                     "P0045\tBolt Waterproof Sock\tsocks\nP0046\tTrail Hat\thats\n")  # fmt: skip
    assert info["title_column"] == "product_name"
    assert "\ntitle         product_name (results show it; --item takes it as well as an id)" in format_info(info)


def test_data_info_says_when_no_column_is_a_title(tmp_path: Path):
    info = shop_info(tmp_path / "shop", "item_id:token\tlabel:token\tcategory:token_seq\tprice:float\n"
                     "P0045\tBolt Sock\tsocks\t3\nP0046\tHat\thats\t4\n")  # fmt: skip
    assert info["title_column"] is None
    line = next(x for x in format_info(info).splitlines() if x.startswith("title "))
    assert line == (
        "title         none: no item column has a title's name (columns: label, category), so results show raw item "
        "ids and --item finds items by id only; to show names, call the column holding them one of "
        f"{', '.join(TITLE_COLUMNS)} (any letter case)"
    )


def test_data_info_says_nothing_of_titles_without_word_columns(tmp_path: Path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "plain.inter").write_text("user_id:token\titem_id:token\nu1\ti1\nu2\ti2\n")
    (folder / "plain.item").write_text("item_id:token\tprice:float\ni1\t3\ni2\t4\n")
    assert "\ntitle " not in format_info(dataset_info(load_dataset(folder)))


# ---------------------------------------------------------------- a CSV given as an atomic file
def test_a_csv_file_read_as_atomic_shows_the_header_it_would_need(tmp_path: Path):
    """It said ``header entry 'userId,movieId,rating' is not 'name:type'``."""
    path = tmp_path / "mine.inter"
    path.write_text("userId,movieId,rating\n1,2,4\n")
    with pytest.raises(DataError) as error:
        read_atomic(path)
    assert str(error.value) == (
        f"{path}:1: the header 'userId,movieId,rating' looks like a CSV line (commas, no tab): atomic files are "
        "tab-separated, unquoted, with a header of name:type entries (type one of token, token_seq, float, "
        r"float_seq); these columns would need the header 'userid:token\tmovieid:token\trating:float' (\t: a tab) "
        "and every line's fields separated by tabs (kgrec data import converts CSV files into a dataset folder)"
    )


def test_the_csv_header_hint():
    assert csv_header_hint("product_id,title,category,description\n", id_column="item_id") == (
        r"item_id:token\ttitle:token\tcategory:token_seq\tdescription:token"
    )
    assert csv_header_hint('"Product Name"; Genres; price') == r"product_name:token\tgenres:token_seq\tprice:float"
    assert csv_header_hint("sku,item_id,name", id_column="item_id") == r"sku:token\titem_id:token\tname:token"
    assert csv_header_hint("item_id:token\ttitle:token") is None  # an atomic header
    assert csv_header_hint("item_id") is None


def test_a_one_column_header_with_a_comma_in_its_name_still_reads(tmp_path: Path):
    path = tmp_path / "odd.item"
    path.write_text("a,b:token\nx\n")
    assert read_atomic(path).types == {"a,b": "token"}
