import numpy as np
import pytest

from kgrec.errors import KgrecError
from kgrec.graph import graph_stats, plot_degrees


def test_stats_count_relations_components_and_coverage(build):
    stats = graph_stats(build())
    assert stats["counts"]["triples"] == 5
    assert stats["relations"] == {"film.film.directed_by": 3, "film.film.starring": 2}
    assert stats["components"] == {"count": 4, "largest": 3}  # {i1,i2,d1} {i4,i5,a1} {i3,d2} {i6}
    assert stats["items_covered"] == 5 and stats["items_covered_share"] == round(5 / 6, 4)
    assert stats["degree"]["entity"]["max"] == 2 and stats["isolated_nodes"] == 1
    # d2 is i3's alone; d1 and a1 are shared: 1 covered item of 5 has a private entity
    assert stats["items_with_private_entity"] == 1 and stats["items_with_private_entity_share"] == 0.2
    assert stats["private_entity_share_median"] == 0.0 and stats["item_entities_median"] == 1.0


def test_private_entities_are_those_one_item_links_to_in_either_direction(atomic):
    from kgrec.data import load_dataset
    from kgrec.graph import build_graph, private_entities, private_owner, recipe_from_dict

    folder = atomic(
        name="private",
        inter="user_id:token|item_id:token\nu1|i1\nu1|i2\nu2|i3",
        link="item_id:token|entity_id:token\ni1|e1\ni2|e2\ni3|e3",
        # d1 shared by i1 and i2; a1, a2 (one as head) i1's alone; i3 links to nothing
        kg="head_id:token|relation_id:token|tail_id:token\ne1|directed_by|d1\ne2|directed_by|d1\n"
        "e1|starring|a1\na2|stars_in|e1\ne1|starring|a1",
    )
    kg = build_graph(load_dataset(folder), recipe_from_dict({"users": True}))
    assert private_entities(kg) == {
        "items_with_private_entity": 1,  # i1 (i3, uncovered, does not count)
        "items_with_private_entity_share": 0.5,
        "private_entity_share_median": round((2 / 3 + 0) / 2, 4),  # i1: a1, a2 of {d1, a1, a2}; i2: none
        "item_entities_median": 2.0,  # 3 and 1; the user nodes and the duplicate triple count nothing
    }
    owner = private_owner(kg)
    i1, a1, a2, d1 = (int(np.flatnonzero(kg.keys == key)[0]) for key in ("i1", "a1", "a2", "d1"))
    assert owner[a1] == owner[a2] == i1 and owner[d1] == -1
    assert np.count_nonzero(owner >= 0) == 2  # items, shared entities and users own nothing


def test_interacted_edges_do_not_count_as_coverage(split_dataset):
    from kgrec.data import load_dataset
    from kgrec.graph import build_graph, recipe_from_dict

    kg = build_graph(load_dataset(split_dataset), recipe_from_dict({"kg": False, "users": True}))
    assert graph_stats(kg)["items_covered"] == 0


def test_degree_plot_is_a_png_written_atomically(build, tmp_path):
    path = plot_degrees(build(inverse=True), tmp_path / "plots" / "degrees.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["degrees.png"]


@pytest.mark.parametrize(("name", "magic"), [("degrees.svg", b"<?xml"), ("degrees.pdf", b"%PDF"), ("degrees.jpg", b"\xff\xd8")])
def test_degree_plot_is_written_in_the_format_its_suffix_names(build, tmp_path, name, magic):
    path = plot_degrees(build(), tmp_path / "plots" / name)  # before: PNG bytes whatever the suffix
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in path.parent.iterdir()] == [name]


def test_degree_plot_refuses_a_suffix_matplotlib_cannot_write(build, tmp_path):
    with pytest.raises(KgrecError, match=r"degrees\.txt: matplotlib writes no '\.txt' image; end the name with one of .*\.png"):
        plot_degrees(build(), tmp_path / "plots" / "degrees.txt")
    assert not (tmp_path / "plots").exists() or list((tmp_path / "plots").iterdir()) == []
