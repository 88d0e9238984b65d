from kgrec.graph import graph_stats, plot_degrees


def test_stats_count_relations_components_and_coverage(build):
    stats = graph_stats(build())
    assert stats["counts"]["triples"] == 5
    assert stats["relations"] == {"film.film.directed_by": 3, "film.film.starring": 2}
    assert stats["components"] == {"count": 4, "largest": 3}  # {i1,i2,d1} {i4,i5,a1} {i3,d2} {i6}
    assert stats["items_covered"] == 5 and stats["items_covered_share"] == round(5 / 6, 4)
    assert stats["degree"]["entity"]["max"] == 2 and stats["isolated_nodes"] == 1


def test_interacted_edges_do_not_count_as_coverage(split_dataset):
    from kgrec.data import load_dataset
    from kgrec.graph import build_graph, recipe_from_dict

    kg = build_graph(load_dataset(split_dataset), recipe_from_dict({"kg": False, "users": True}))
    assert graph_stats(kg)["items_covered"] == 0


def test_degree_plot_is_a_png_written_atomically(build, tmp_path):
    path = plot_degrees(build(inverse=True), tmp_path / "plots" / "degrees.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["degrees.png"]
