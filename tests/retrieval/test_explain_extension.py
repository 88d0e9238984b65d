"""Explanations over the graph extension that ``add-items`` keeps (the catalog's
:class:`~kgrec.retrieval.catalog.GraphExtension`): added items are the extension's nodes, numbered as
the extension numbers them, and paths pass through the new entities it holds, under their names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kgrec.graph.kg import ENTITY, ITEM, KnowledgeGraph
from kgrec.retrieval import Recommender
from kgrec.retrieval.catalog import AddedItem, Catalog, GraphExtension
from kgrec.retrieval.explain import Explainer, HistoryItem

ITEM_HEADER = "item_id:token\ttitle:token"
KG_HEADER = "head_id:token\trelation_id:token\ttail_id:token"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def node_ids(rec: Recommender) -> dict[int, str]:
    """Raw id of every node of the run's graph and of its extension, as the extension numbers
    them (an added item without a link is keyed "\\0" + its id)."""
    kg, extension = rec.run.graph, rec.catalog.graph_extension
    ids = {v: str(key) for v, key in enumerate(kg.keys)}
    ids |= {v: key.removeprefix("\0") for key, v in extension.entities.items()}
    return ids


def check_nodes(rec: Recommender, explanation) -> int:
    """Each path's nodes are the nodes of the ids it shows (no added item numbered as a node of
    the extension it is not)."""
    ids = node_ids(rec)
    for path in explanation.paths:
        assert [ids[v] for v in path.path.nodes] == list(path.ids), (path.path.nodes, path.ids)
    return len(explanation.paths)


def explained(rec: Recommender, source: str, result: str):
    (found,) = [r for r in rec.similar(source, k=rec.catalog.n_active - 1) if r.item_id == result]
    return found.explanation


def test_two_added_films_are_explained_by_the_new_director_they_share(run_copy: Path, tmp_path: Path):
    """n1 and n2 name dNEW, a director the run's graph does not have: only the extension joins
    them. The explanation gave no path (their only edges lead to new nodes)."""
    rec = Recommender.open(run_copy)
    items = write(tmp_path / "n.item", ITEM_HEADER, "n1\tNew one", "n2\tNew two")
    kg = write(tmp_path / "n.kg", KG_HEADER, "n1\tfilm.directed_by\tdNEW", "n2\tfilm.directed_by\tdNEW",
               "dNEW\tfilm.genre\tg0")  # fmt: skip
    rec.add_items(items, kg=kg)
    why = explained(rec, "n1", "n2")
    assert why.kind == "kg_path", why.text
    assert why.text == "New one -directed_by-> dNEW <-directed_by- New two"
    out = why.paths[0].to_dict()
    assert out["ids"] == ["n1", "dNEW", "n2"] and out["names"] == ["New one", "dNEW", "New two"]
    assert [hop["relations"] for hop in out["hops"]] == [["film.directed_by"], ["film.directed_by"]]
    assert check_nodes(rec, why) == len(why.paths)
    again = Recommender.open(run_copy)  # read back from RUN_DIR/catalog
    assert explained(again, "n2", "n1").text == "New two -directed_by-> dNEW <-directed_by- New one"


def test_a_trained_film_and_an_added_one_share_a_new_entity(run_copy: Path, tmp_path: Path):
    """A new triple joins the trained item i3 (its entity e3) to dNEW, whom the added n1 names
    too: i3's neighbours in the extended graph include dNEW, for ``similar`` and ``recommend``."""
    rec = Recommender.open(run_copy)
    items = write(tmp_path / "n.item", ITEM_HEADER, "n1\tNew one")
    kg = write(tmp_path / "n.kg", KG_HEADER, "n1\tfilm.directed_by\tdNEW", "e3\tfilm.directed_by\tdNEW")
    rec.add_items(items, kg=kg)
    why = explained(rec, "i3", "n1")
    assert why.kind == "kg_path" and why.text == "Film 3 -directed_by-> dNEW <-directed_by- New one", why.text
    assert check_nodes(rec, why) == len(why.paths)
    cat = rec.catalog
    user = rec.explainer.for_user([HistoryItem(cat.position("i3"), 5.0)], cat.position("n1"))
    assert user.text == "you rated Film 3 highly (5) -directed_by-> dNEW <-directed_by- New one", user.text


def test_an_item_of_a_later_batch_is_not_numbered_as_an_entity_of_an_earlier_one(run_copy: Path, tmp_path: Path):
    """The first batch made n1 and dNEW nodes n, n + 1; the second batch's n2 is node n + 2.
    The explainer numbered n2 ``n + position - n_base`` = n + 1, dNEW's node: its paths named
    the extension's dNEW as their end, and missed n2's edge to dNEW."""
    rec = Recommender.open(run_copy)
    write(tmp_path / "a.item", ITEM_HEADER, "n1\tNew one")
    write(tmp_path / "a.kg", KG_HEADER, "n1\tfilm.directed_by\tdNEW", "dNEW\tfilm.genre\tg0")
    rec.add_items(tmp_path / "a.item", kg=tmp_path / "a.kg")
    write(tmp_path / "b.item", ITEM_HEADER, "n2\tNew two")
    write(tmp_path / "b.kg", KG_HEADER, "n2\tfilm.directed_by\tdNEW", "n2\tfilm.genre\tg1")
    rec.add_items(tmp_path / "b.item", kg=tmp_path / "b.kg")
    n = rec.run.graph.n_nodes
    assert rec.catalog.graph_extension.entities == {"n1": n, "dNEW": n + 1, "n2": n + 2}
    assert rec.explainer.node_of(rec.catalog.position("n2")) == n + 2
    checked = 0
    for source in ("n2", "i1", "i5"):
        for result in rec.similar(source, k=rec.catalog.n_active - 1):
            checked += check_nodes(rec, result.explanation)
            assert "dNEW" not in result.explanation.text or source == "n2" and result.item_id == "n1"
    assert checked > 0
    assert explained(rec, "n2", "n1").text == "New two -directed_by-> dNEW <-directed_by- New one"
    assert explained(rec, "i1", "n2").text == "Film 1 -genre-> g1 (no name in the KG; 16 items link to it) <-genre- New two"


# ---------------------------------------------------------------------- a graph made by hand
RELATIONS = ["film.directed_by", "film.genre"]


def small_explainer(added: list[AddedItem], extension: GraphExtension | None, removed: tuple[str, ...] = ()) -> Explainer:
    """Items i0, i1 (nodes 0, 1), entities Lucas (2) and Drama (3): i0 -directed_by-> Lucas,
    i0 and i1 -genre-> Drama; then the ``added`` items (less the ``removed`` ones) and the graph
    ``extension``."""
    kg = KnowledgeGraph(
        np.asarray([0, 0, 1]), np.asarray([0, 1, 1]), np.asarray([2, 3, 3]), np.asarray(RELATIONS, dtype=object),
        np.asarray([-1, -1]), np.asarray([ITEM, ITEM, ENTITY, ENTITY], dtype=np.int8),
        np.asarray(["Film 0", "Film 1", "Lucas", "Drama"], dtype=object), np.asarray(["i0", "i1", "Lucas", "Drama"], dtype=object), 2,
    )  # fmt: skip
    tokens = ["i0", "i1", *(a.item_id for a in added)]
    titles = ["Film 0", "Film 1", *(a.title for a in added)]
    vectors = np.random.default_rng(0).normal(size=(len(tokens), 4))
    catalog = Catalog(tokens, titles, vectors, {}, {}, n_base=2, added=added, graph_extension=extension)
    return Explainer(kg, catalog.with_removed(removed))


def test_an_added_item_without_a_link_is_the_extension_node_of_its_key():
    """Batch 1: film a (self-linked) directed by Spielberg (nodes 4, 5); batch 2: film b
    without a link (key "\\0b", node 6, genre Drama) and c (node 7, directed by Spielberg). b was
    node 4 + 3 - 2 = 5, Spielberg's; a and c, whose edges lead to new nodes only, had none."""
    added = [AddedItem("a", "Alpha"), AddedItem("b", "Beta", links=[[1, 3, 1]]), AddedItem("c", "Gamma")]
    extension = GraphExtension(4, {"a": 4, "Spielberg": 5, "\0b": 6, "c": 7}, ((4, 0, 5), (6, 1, 3), (7, 0, 5)))
    explainer = small_explainer(added, extension)
    assert [explainer.node_of(p) for p in range(5)] == [0, 1, 4, 6, 7]
    why = explainer.for_similar(2, 4)
    assert why.text == "Alpha -directed_by-> Spielberg <-directed_by- Gamma"
    assert why.paths[0].path.nodes == (4, 5, 7) and why.paths[0].ids == ("a", "Spielberg", "c")
    genre = explainer.for_similar(3, 1)
    assert genre.paths[0].path.nodes == (6, 3, 1) and genre.paths[0].ids == ("b", "Drama", "i1")
    assert genre.text == "Beta -genre-> Drama <-genre- Film 1"
    history = explainer.for_user([HistoryItem(0, 5.0)], 3)
    assert history.text == "you rated Film 0 highly (5) -genre-> Drama <-genre- Beta"


def test_an_added_item_can_be_the_middle_of_a_path_unless_removed():
    """d (node 4) has an edge to both trained films: they meet through it, by its title, while
    it is in the catalog."""
    added = [AddedItem("d", "Delta")]
    extension = GraphExtension(4, {"d": 4}, ((4, 0, 0), (4, 0, 1)))
    explainer = small_explainer(added, extension)
    paths = explainer.for_similar(0, 1).paths
    assert [p.text for p in paths] == ["Film 0 -genre-> Drama <-genre- Film 1", "Film 0 <-directed_by- Delta -directed_by-> Film 1"]
    gone = small_explainer(added, extension, removed=("d",))
    assert [p.text for p in gone.for_similar(0, 1).paths] == ["Film 0 -genre-> Drama <-genre- Film 1"]


def test_an_unnamed_new_entity_says_how_many_items_link_to_it():
    added = [AddedItem("a", "Alpha"), AddedItem("c", "Gamma")]
    extension = GraphExtension(4, {"a": 4, "m.0x1": 5, "c": 6}, ((4, 0, 5), (6, 0, 5)))
    why = small_explainer(added, extension).for_similar(2, 3)
    assert why.text == "Alpha -directed_by-> m.0x1 (no name in the KG; 2 items link to it) <-directed_by- Gamma"


def test_items_added_before_the_extension_was_kept_explain_as_before():
    """Without an extension, an added item with links is node ``n_nodes + position - n_base``;
    with one, an item that is none of its nodes (added before it was kept) comes after it."""
    old = AddedItem("o", "Omega", links=[[1, 3, 1]])
    explainer = small_explainer([old], None)
    assert explainer.node_of(2) == 4
    why = explainer.for_similar(2, 1)
    assert why.text == "Omega -genre-> Drama <-genre- Film 1" and why.paths[0].path.nodes == (4, 3, 1)
    assert why.paths[0].ids == ("o", "Drama", "i1")
    later = small_explainer([old, AddedItem("c", "Gamma", links=[[1, 3, 1]])], GraphExtension(4, {"c": 4}, ((4, 1, 3),)))
    assert [later.node_of(p) for p in range(4)] == [0, 1, 5, 4]
    assert later.for_similar(2, 3).text == "Omega -genre-> Drama <-genre- Gamma"
    assert later.for_similar(2, 3).paths[0].path.nodes == (5, 3, 4)
