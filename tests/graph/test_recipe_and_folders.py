"""Edge cases of building and reading graphs: odd recipe keys, relations without triples, paths
under a file, and names whose length must not cost every other name its bytes."""

import tracemalloc

import pytest

from kgrec.cli.main import main
from kgrec.data import load_dataset
from kgrec.errors import ConfigError, GraphError, KgrecError
from kgrec.graph import (
    KnowledgeGraph,
    build_graph,
    load_recipe,
    plot_degrees,
    recipe_from_dict,
    resolve_recipe,
)

INTER = "user_id:token|item_id:token\nu1|i1\nu1|i2\nu2|i3"


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kg: true\n3: x\n", "2:1: unknown key '3'"),
        ("kg: true\n3: x\nfoo: y\n", "2:1: unknown key '3'"),
        ("attributes:\n  - column: class\n    relation: g\n    3: x\n    foo: y\n", "4:5: attributes[0]: unknown key '3'"),
    ],
)
def test_a_key_yaml_reads_as_a_number_is_refused_at_its_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:  # before: a traceback (AttributeError, or TypeError beside 'foo')
        load_recipe(path)
    assert str(error.value).startswith(f"{path}:{message} (expected one of: ")


def test_an_attribute_named_as_a_kg_relation_is_refused_at_its_line(toy, tmp_path):
    path = write(tmp_path, "attributes:\n  - column: class\n    relation: film.film.directed_by\n")
    with pytest.raises(ConfigError) as error:  # before: refused by the build, without file or line
        resolve_recipe(toy, path)
    assert str(error.value) == (
        f"{path}:3:5: recipe attribute relation 'film.film.directed_by' is defined twice (a KG relation of 'toy' and "
        "this attribute's); rename the attribute (a deny pattern would drop both)"
    )
    kept = build_graph(toy, recipe_from_dict({"kg": False, "attributes": [{"column": "class", "relation": "film.film.directed_by"}]}))
    assert list(kept.relation_names) == ["film.film.directed_by"]  # without the KG there is no clash


def test_an_attribute_column_without_any_value_is_refused_at_its_line(atomic, tmp_path):
    item = "item_id:token|genre:token_seq|tags:token_seq\ni1|Comedy|\ni2|Drama|\ni3||"
    shop = load_dataset(atomic(name="shop", inter=INTER, item=item))
    path = write(tmp_path, "kg: false\nattributes:\n  - {column: genre, relation: item.genre}\n  - {column: tags, relation: item.tags}\n")
    with pytest.raises(ConfigError) as error:  # before: item.tags was built without a triple, silently
        resolve_recipe(shop, path)
    assert str(error.value) == (
        f"{path}:4:6: recipe attribute column 'tags' has no value in any item of 'shop', so item.tags would have "
        "no triple; drop the attribute, or name a column with values"
    )
    recipe, _ = resolve_recipe(shop)  # without a recipe file, the empty column is left out
    assert [a.column for a in recipe.attributes] == ["genre"]
    assert list(build_graph(shop, recipe).relation_names) == ["item.genre"]


def test_min_degree_dropping_every_triple_is_refused_at_its_line(toy_dataset, tmp_path, capsys):
    path = write(tmp_path, "kg: true\nmin_degree: 100\n")
    argv = ["graph", "build", "--data", str(toy_dataset), "--recipe", str(path), "--out", str(tmp_path / "g")]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"kgrec: error: {path}:2:1: the recipe asks for relations but the graph built from 'toy' would have no "
        "triples (5 KG triples; min_degree 100 dropped all 5); lower min_degree"
    )  # before: no file, line or column


def test_min_degree_notes_the_relations_it_leaves_without_triples(toy):
    notes: list[str] = []
    recipe = recipe_from_dict({"attributes": [{"column": "class", "relation": "item.genre"}], "min_degree": 3})
    kg = build_graph(toy, recipe, notes=notes)  # d1, d2, a1 have at most 2 neighbours; Action and Comedy 3
    assert list(kg.relation_names) == ["film.film.directed_by", "film.film.starring", "item.genre"]
    assert notes[-1] == (
        "min_degree 3 dropped every triple of 2 of 3 relations (film.film.directed_by, film.film.starring), which "
        "stay in the graph without triples; lower min_degree, or deny them"
    )  # before: nothing said


def test_a_graph_or_plot_under_a_file_is_refused_in_one_line(build, toy_dataset, tmp_path, capsys):
    kg = build()
    inter = toy_dataset / "toy.inter"
    with pytest.raises(GraphError, match=rf"^{inter}/g: {inter} is a file, not a folder; give a new or empty folder"):
        kg.save(inter / "g")  # before: FileExistsError from mkdir
    with pytest.raises(KgrecError, match=rf"^{inter}/d.png: cannot write the image there \(File exists\)$"):
        plot_degrees(kg, inter / "d.png")  # write_figure's check, as for every plot
    argv = ["graph", "build", "--data", str(toy_dataset), "--out", str(inter / "deep" / "g")]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"kgrec: error: {inter}/deep/g: {inter} is a file")


def test_a_file_given_for_the_graph_folder_is_called_a_file(build, tmp_path):
    folder = build().save(tmp_path / "graph")
    with pytest.raises(GraphError, match=rf"^{folder}/graph.npz: a file, not a graph folder \({folder} is a graph\)$"):
        KnowledgeGraph.load(folder / "graph.npz")  # before: "graph folder not found"


def test_one_long_attribute_value_costs_its_own_bytes_not_every_values(atomic):
    """The values went through a fixed-width text array: one 10,000-character value made each
    of the 300 values 40 kB wide while building."""
    item = "item_id:token|brand:token\n" + "\n".join(f"i{i}|{'b' * 10_000 if i == 0 else f'b{i % 7}'}" for i in range(300))
    inter = "user_id:token|item_id:token\n" + "\n".join(f"u|i{i}" for i in range(300))
    shop = load_dataset(atomic(name="shop", inter=inter, item=item))
    recipe = recipe_from_dict({"kg": False, "attributes": [{"column": "brand", "relation": "item.brand"}]})
    tracemalloc.start()
    try:
        kg = build_graph(shop, recipe)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # before: 36 MB
    assert set(kg.names[kg.n_items :]) == {"b" * 10_000, *(f"b{i}" for i in range(7))}


def test_one_long_item_id_costs_its_own_bytes_when_a_graph_is_checked(atomic, tmp_path):
    inter = "user_id:token|item_id:token\n" + "\n".join(f"u{i % 3}|{'i' * 10_000 if i == 0 else f'i{i}'}" for i in range(300))
    shop = load_dataset(atomic(name="shop", inter=inter))
    kg = build_graph(shop, recipe_from_dict({"kg": False, "users": True}))
    tracemalloc.start()
    try:
        kg.check_dataset(shop, check_sources=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # before: 24 MB
