"""Audit of adding items after training: the vectors ``add_items`` records are recomputed here
from the model's own functions (``encode_graph`` on the graph extended by hand,
``cold_item_vectors``), and the new-item files are read as the dataset loader reads its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.errors import DataError, RetrievalError
from kgrec.retrieval import Recommender, read_new_items

KG_HEADER = "head_id:token\trelation_id:token\ttail_id:token"
LINK_HEADER = "item_id:token\tentity_id:token"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def entity_token(rec: Recommender, node: int) -> str:
    """The KG entity token of a graph node (an item node: the entity merged into it)."""
    graph, data = rec.run.graph, rec.run.dataset
    if node < graph.n_items:
        return str(data.entities[data.item_entity[node]])
    return str(graph.keys[node])


def cold_vector(rec: Recommender, heads: list[int], rels: list[int], tails: list[int], n_new: int, row: int) -> np.ndarray:
    """What the model gives a new node ``row`` of the graph extended by the edges given."""
    model = rec.run.model
    with torch.no_grad():
        edge_index = torch.cat([model.edge_index, torch.as_tensor([heads, tails], dtype=torch.int64)], dim=1)
        edge_type = torch.cat([model.edge_type, torch.as_tensor(rels, dtype=torch.int64)])
        nodes = model.encode_graph(edge_index, edge_type, num_new_nodes=n_new)
        return model.cold_item_vectors(None, nodes[row : row + 1])[0].numpy()


@pytest.mark.parametrize("repeat", [1, 2])
def test_a_trained_item_posed_as_new_gets_the_vector_the_model_computes(run_copy: Path, tmp_path: Path, repeat: int):
    """Item i5's own triples, under a new id and entity, give the model's cold vector for that
    neighbourhood, also when the .kg file repeats its rows (repeated edges weighed twice in the
    encoder's mean: the graph builder keeps each triple once); and so it stays after reopening."""
    rec = Recommender.open(run_copy)
    graph = rec.run.graph
    i, n = graph.item_node("i5"), graph.n_nodes
    base = graph.inverse_of[graph.relation] < 0  # the triples a .kg file gives; generated inverses follow them
    out, into = (graph.head == i) & base, (graph.tail == i) & base
    names = [str(r) for r in graph.relation_names]
    rows = [f"x5\t{names[r]}\t{entity_token(rec, t)}" for r, t in zip(graph.relation[out], graph.tail[out], strict=True)]
    rows += [f"{entity_token(rec, h)}\t{names[r]}\tx5" for h, r in zip(graph.head[into], graph.relation[into], strict=True)]
    assert len(rows) >= 2
    items = write(tmp_path / "n.item", "item_id:token\ttitle:token\tclass:token_seq", "n5\tFilm 5\tComedy")
    link = write(tmp_path / "n.link", LINK_HEADER, "n5\tx5")
    kg = write(tmp_path / "n.kg", KG_HEADER, *(rows * repeat))
    # expected: a new node N with every edge of node i (generated inverses included) moved onto it
    touching = (graph.head == i) | (graph.tail == i)
    heads = np.where(graph.head[touching] == i, n, graph.head[touching]).tolist()
    tails = np.where(graph.tail[touching] == i, n, graph.tail[touching]).tolist()
    expected = cold_vector(rec, heads, graph.relation[touching].tolist(), tails, 1, n)
    rec.add_items(items, link, kg)
    got = rec.catalog.vectors[rec.catalog.position("n5")]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, rec.catalog.vectors[i])  # a cold vector, not the trained one
    again = Recommender.open(run_copy)
    np.testing.assert_array_equal(again.catalog.vectors[again.catalog.position("n5")], got)
    assert [r.item_id for r in again.similar("n5", k=5, explain=False)] == [r.item_id for r in rec.similar("n5", k=5, explain=False)]


def test_items_whose_triples_reach_no_node_of_the_graph_get_no_graph_vector(run_copy: Path, tmp_path: Path):
    """Links whose triples join only new or unknown entities gave every such item one constant
    vector (zeros in, the layers' biases out), recorded as embedded by the graph; without text
    they are refused now, and an item two hops from a known node still gets its vector."""
    rec = Recommender.open(run_copy)
    items = write(tmp_path / "a.item", "item_id:token\ttitle:token", "a1\tAlpha", "a2\tBeta", "a3\tGamma")
    link = write(tmp_path / "a.link", LINK_HEADER, "a1\tE1", "a2\tE2", "a3\tE3")
    kg = write(tmp_path / "a.kg", KG_HEADER, "E1\tfilm.genre\tE2", "E3\tfilm.directed_by\tnobody_known")
    with pytest.raises(RetrievalError, match=r"new items 'a1', 'a2', 'a3' are linked to 'E1', 'E2', 'E3'.*nothing to embed them from"):
        rec.add_items(items, link, kg)
    assert not rec.catalog.added

    # a4 -> X (new) -> g0 (known): two hops, which the model's two layers carry
    assert rec.run.model.graph_encoder.num_layers == 2
    items = write(tmp_path / "b.item", "item_id:token\ttitle:token", "a4\tDelta")
    link = write(tmp_path / "b.link", LINK_HEADER, "a4\tE4")
    kg = write(tmp_path / "b.kg", KG_HEADER, "E4\tfilm.directed_by\tX", "X\tfilm.genre\tg0")
    graph = rec.run.graph
    n, g0 = graph.n_nodes, int(np.flatnonzero(graph.keys == "g0")[0])
    names = [str(r) for r in graph.relation_names]
    expected = cold_vector(rec, [n, n + 1], [names.index("film.directed_by"), names.index("film.genre")], [n + 1, g0], 2, n)
    rec.add_items(items, link, kg)
    assert rec.catalog.added[-1].via == ("graph",)
    np.testing.assert_allclose(rec.catalog.vectors[-1], expected, rtol=1e-5, atol=1e-6)


def test_a_removed_item_added_again_under_a_new_id_is_its_entitys_node(run_copy: Path, tmp_path: Path):
    """Removed, then added under a new id linked to its own entity with its own triples (README:
    "remove it and add it again, titled, under a new id"): the item's node, with no edge added
    twice, and no note that the entity is unknown (the graph keys the node by the item's id)."""
    rec = Recommender.open(run_copy)
    node = rec.run.graph.item_node("i3")
    rec.remove_items("i3")
    items = write(tmp_path / "r.item", "item_id:token\ttitle:token\tclass:token_seq", "r3\tFilm 3 (restored)\tHorror")
    link = write(tmp_path / "r.link", LINK_HEADER, "r3\te3")
    kg = write(tmp_path / "r.kg", KG_HEADER, "e3\tfilm.directed_by\td3_0", "e3\tfilm.genre\tg3")
    added = rec.add_items(items, link, kg)
    assert not added.notes, added.notes
    assert rec.catalog.added[-1].anchor == node
    model = rec.run.model
    with torch.no_grad():
        expected = model.cold_item_vectors(None, model.encode_graph()[node : node + 1])[0].numpy()
    np.testing.assert_allclose(rec.catalog.vectors[-1], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("item", "link", "kg", "where"),
    [
        ("item_id:token\ttitle:token\nn1\tA\n\tB\n", None, None, r"n\.item:3: column 'item_id:token': empty id"),
        ("item_id:token\ttitle:token\nn1\tA\n", f"{LINK_HEADER}\nn1\t\n", None, r"n\.link:2: column 'entity_id:token': empty id"),
        ("item_id:token\ttitle:token\nn1\tA\n", None, f"{KG_HEADER}\nn1\tfilm.genre\tg0\nn1\tfilm.genre\t\n", r"n\.kg:3: column 'tail_id:token': empty id"),
    ],
    ids=["item", "link", "kg"],
)
def test_empty_ids_in_new_item_files_are_refused_at_their_line(tmp_path: Path, item, link, kg, where):
    """An empty item id (an item no command can name), entity or triple end was read as the id
    '' (the entity a new node); the dataset loader refuses the same files."""
    paths = [write(tmp_path / f"n.{ext}", text.rstrip("\n")) if text is not None else None
             for ext, text in (("item", item), ("link", link), ("kg", kg))]  # fmt: skip
    with pytest.raises(DataError, match=where):
        read_new_items(*paths)


def test_added_titles_write_numbers_as_the_graph_names_its_items(run_copy: Path, tmp_path: Path):
    """A recipe's ``item_name`` over a float column titled new items 'Film (1995.0)' and, without
    a value, 'Film (nan)', where the graph builder names items 'Film (1995)' and 'Film'."""
    rec = Recommender.open(run_copy)
    provenance = rec.run.graph.provenance
    provenance["recipe"] = {**provenance["recipe"], "item_name": "{title} ({year})"}
    items = write(tmp_path / "y.item", "item_id:token\ttitle:token\tyear:float", "y1\tFilm One\t1995", "y2\tFilm Two\t")
    link = write(tmp_path / "y.link", LINK_HEADER, "y1\tye1", "y2\tye2")
    kg = write(tmp_path / "y.kg", KG_HEADER, "ye1\tfilm.genre\tg0", "ye2\tfilm.genre\tg1")
    rec.add_items(items, link, kg)
    assert [a.title for a in rec.catalog.added] == ["Film One (1995)", "Film Two"]
