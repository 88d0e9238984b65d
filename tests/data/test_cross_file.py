"""Checks across the files of a dataset folder (ids that must meet), and what ``data info``
reports of them: item rows vs interactions, link entities vs the KG, title columns, ratings."""

import re

import pytest

from kgrec.data import load_dataset
from kgrec.data.dataset import DisjointIdsError, is_text_column
from kgrec.data.info import dataset_info, format_info
from kgrec.errors import DataError
from tests.conftest import TOY_INTER, TOY_ITEM, TOY_KG, TOY_LINK


def test_an_item_file_sharing_no_id_with_the_interactions_is_refused(atomic):
    folder = atomic(inter=TOY_INTER, item=re.sub(r"\ni(\d)", r"\nI\1", TOY_ITEM))  # I1 .. I6 rows, i1 .. i5 interactions
    with pytest.raises(DisjointIdsError) as error:
        load_dataset(folder)
    assert str(error.value) == (
        f"{folder / 'toy.item'}: column 'item_id:token': none of its 6 item ids occurs in the interactions "
        f"({folder / 'toy.inter'}, column 'item_id:token'): this file has 'I1', 'I2', 'I3' and 3 more, "
        "the interactions 'i1', 'i2', 'i3' and 2 more; 5 of them match when letter case is ignored "
        "('I1' here is 'i1' there): write the ids the same way in both files"
    )
    assert isinstance(error.value, DataError) and error.value.line is None


def test_ids_that_differ_by_surrounding_spaces_are_hinted(atomic):
    folder = atomic(inter="user_id:token|item_id:token\nu| a\nu| b", item="item_id:token|title:token\na|A\nb|B")
    with pytest.raises(DataError, match=r"2 of them match when surrounding spaces are ignored \('a' here is ' a' there\)"):
        load_dataset(folder)


def test_ids_that_match_in_no_way_get_no_hint(atomic):
    folder = atomic(inter="user_id:token|item_id:token\nu|1", item="item_id:token|title:token\nx|A")
    with pytest.raises(DataError, match=r"this file has 'x', the interactions '1'$"):
        load_dataset(folder)


def test_an_item_file_meeting_some_interactions_loads(atomic):
    # i1 has a row, i2 has none (no columns), x has a row and no interactions: all fine
    folder = atomic(inter="user_id:token|item_id:token\nu|i1\nu|i2", item="item_id:token|title:token\ni1|One\nx|Ex")
    ds = load_dataset(folder)
    assert ds.items.tolist() == ["i1", "x", "i2"] and ds.item_names() == ["One", "Ex", "i2"]
    empty = atomic(name="empty", inter="user_id:token|item_id:token\nu|i1", item="item_id:token|title:token")
    assert load_dataset(empty).n_items == 1  # a header-only item file has no id to mismatch


def test_links_sharing_no_entity_with_the_kg_are_refused(atomic):
    folder = atomic(inter=TOY_INTER, kg=TOY_KG, link=re.sub(r"\|e(\d)", r"|E\1", TOY_LINK))
    with pytest.raises(DisjointIdsError) as error:
        load_dataset(folder)
    assert str(error.value) == (
        f"{folder / 'toy.link'}: column 'entity_id:token': none of its 5 entities occurs in the KG "
        f"({folder / 'toy.kg'}, columns 'head_id:token', 'tail_id:token'): this file has 'E1', 'E2', 'E3' and 2 more, "
        "the KG 'e1', 'e2', 'e4' and 5 more; 5 of them match when letter case is ignored ('E1' here is 'e1' there): "
        "write the ids the same way in both files"
    )


def test_info_counts_only_links_whose_entity_is_in_the_kg(atomic):
    link = TOY_LINK.replace("i4|e4", "i4|zz").replace("i5|e5", "i5|d1")  # zz is in no triple; d1 is a tail
    ds = load_dataset(atomic(inter=TOY_INTER, item=TOY_ITEM, kg=TOY_KG, link=link))
    assert ds.items_in_kg().tolist() == [True, True, True, False, True, False]
    info = dataset_info(ds)
    assert (info["items_linked"], info["items_linked_outside_kg"]) == (4, 1)
    assert "linked items  4 (66.7% of items); 1 more link to entities not in the KG" in format_info(info)


def test_info_says_nothing_of_links_outside_the_kg_when_there_are_none(toy_dataset):
    info = dataset_info(load_dataset(toy_dataset))
    assert info["items_linked"] == 5 and "items_linked_outside_kg" not in info
    assert "linked items  5 (83.3% of items)\n" in format_info(info)


def test_the_title_column_is_found_whatever_its_letter_case(atomic):
    folder = atomic(inter="user_id:token|item_id:token\nu|a", item="item_id:token|Year:token|Title:token\na|1995|Heat")
    ds = load_dataset(folder)
    assert ds.title_column() == "Title" and ds.item_names() == ["Heat"]
    assert is_text_column("Title") and is_text_column("MOVIE_TITLE") and not is_text_column("Genres")


def ratings_folder(atomic, ratings):
    rows = "\n".join(f"u{k}|i{k % 7}|{r}" for k, r in enumerate(ratings))
    return atomic(inter="user_id:token|item_id:token|rating:float\n" + rows)


def test_many_distinct_ratings_are_binned_into_round_ranges(atomic):
    ratings = [round(-1 + 2 * k / 299, 3) for k in range(300)]  # 300 distinct values from -1 to 1
    info = dataset_info(load_dataset(ratings_folder(atomic, ratings)))
    histogram = info["rating_histogram"]
    assert list(histogram)[:2] == ["[-1, -0.8)", "[-0.8, -0.6)"] and list(histogram)[-1] == "[0.8, 1]"
    assert len(histogram) == 10 and sum(histogram.values()) == 300 and info["rating_distinct"] == 300
    expected = [sum(lo <= r < lo + 0.2 or (lo == 0.8 and r == 1) for r in ratings) for lo in (-1 + 0.2 * k for k in range(10))]
    assert list(histogram.values()) == expected
    text = format_info(info)
    assert "ratings       mean 0.000 (300 distinct values, binned)" in text
    assert "\n    [-1, -0.8)         30  ####\n" in text and len(text.splitlines()) < 20


def test_values_on_a_bin_edge_fall_in_the_bin_they_open(atomic):
    ratings = [k / 100 for k in range(101)] + [0.7, 0.7]  # 0.7 as float32 is 0.69999999: still in [0.7, 0.8)
    histogram = dataset_info(load_dataset(ratings_folder(atomic, ratings)))["rating_histogram"]
    assert len(histogram) == 10 and (histogram["[0, 0.1)"], histogram["[0.6, 0.7)"]) == (10, 10)
    assert (histogram["[0.7, 0.8)"], histogram["[0.9, 1]"]) == (12, 11)


def test_few_distinct_ratings_keep_a_row_each(atomic):
    ratings = [k / 2 for k in range(1, 11)] * 2  # 0.5 .. 5 in steps of 0.5: ten values
    info = dataset_info(load_dataset(ratings_folder(atomic, ratings)))
    assert list(info["rating_histogram"]) == ["0.5", "1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5"]
    assert "rating_distinct" not in info
    assert "ratings       mean 2.750\n     0.5          2  ####\n" in format_info(info)


def test_a_user_file_sharing_no_id_with_the_interactions_is_refused(atomic):
    folder = atomic(inter="user_id:token|item_id:token\nu1|a\nu2|b", user="user_id:token|age:token\nU1|30\nU2|40")
    with pytest.raises(DisjointIdsError, match=r"toy.user: column 'user_id:token': none of its 2 user ids occurs in the "
                                               r"interactions .* \('U1' here is 'u1' there\)"):  # fmt: skip
        load_dataset(folder)
    some = atomic(name="some", inter="user_id:token|item_id:token\nu1|a\nu2|b", user="user_id:token|age:token\nu1|30\nx|40")
    assert load_dataset(some).n_users == 3  # u1 has a row, u2 none, x no interactions: all fine


def test_info_notes_interacted_items_without_a_row_in_the_item_file(atomic):
    item = "item_id:token|title:token\ni1|Alpha\ni2|Beta\ni9|Unrated"  # i3, i4, i5 have no row
    info = dataset_info(load_dataset(atomic(inter=TOY_INTER, item=item)))
    assert info["items_without_row"] == 3
    assert "\n  3 interacted items have no row in the item file: no columns, so their text and name are their ids" in format_info(info)


def test_info_says_nothing_of_rows_when_every_item_has_one(toy_dataset):
    info = dataset_info(load_dataset(toy_dataset))
    assert "items_without_row" not in info and "no row in the item file" not in format_info(info)


def test_info_counts_repeated_triples_and_self_loops_and_the_graph_keeps_one_copy(atomic):
    from kgrec.graph import build_graph

    kg = TOY_KG + "e1|film.film.directed_by|d1\ne1|film.film.directed_by|d1\ne2|film.film.sequel|e2\n"
    ds = load_dataset(atomic(inter=TOY_INTER, item=TOY_ITEM, kg=kg, link=TOY_LINK))
    info = dataset_info(ds)
    assert (info["kg_triples"], info["kg_repeated_triples"], info["kg_self_loops"]) == (8, 2, 1)
    assert "8 triples; 2 repeat an earlier one (the graph keeps one copy); 1 links an entity to itself" in format_info(info)
    assert build_graph(ds).n_triples == 8 - 2
    plain = dataset_info(load_dataset(atomic(name="plain", inter=TOY_INTER, item=TOY_ITEM, kg=TOY_KG, link=TOY_LINK)))
    assert (plain["kg_repeated_triples"], plain["kg_self_loops"]) == (0, 0)
    assert "5 triples\n" in format_info(plain)
