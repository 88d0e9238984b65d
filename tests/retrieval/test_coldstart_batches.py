"""Items added in several batches: the nodes and edges an earlier ``add-items`` brought to the
run's graph stay part of it (the catalog's graph extension), so a later batch builds on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.errors import RetrievalError
from kgrec.retrieval import Recommender

ITEM_HEADER = "item_id:token\ttitle:token"
KG_HEADER = "head_id:token\trelation_id:token\ttail_id:token"
LINK_HEADER = "item_id:token\tentity_id:token"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expected_vector(rec: Recommender, triples: list[tuple[int, str, int]], n_new: int, node: int) -> np.ndarray:
    """The model's cold vector of ``node`` on the run's graph plus ``triples`` (relation names;
    the graph's generated inverses added as the graph has them)."""
    graph, model = rec.run.graph, rec.run.model
    relation = {str(name): i for i, name in enumerate(graph.relation_names)}
    inverse = {int(base): i for i, base in enumerate(graph.inverse_of) if base >= 0}
    heads, tails, rels = [], [], []
    for h, name, t in triples:
        heads.append(h), tails.append(t), rels.append(relation[name])
        if relation[name] in inverse:
            heads.append(t), tails.append(h), rels.append(inverse[relation[name]])
    with torch.no_grad():
        edge_index = torch.cat([model.edge_index, torch.as_tensor([heads, tails], dtype=torch.int64)], dim=1)
        edge_type = torch.cat([model.edge_type, torch.as_tensor(rels, dtype=torch.int64)])
        nodes = model.encode_graph(edge_index, edge_type, num_new_nodes=n_new)
        return model.cold_item_vectors(None, nodes[node : node + 1])[0].numpy()


def first_batch(rec: Recommender, folder: Path) -> None:
    """Film n1, directed by a new director dNEW, whom a triple joins to genre g0."""
    items = write(folder / "b1.item", ITEM_HEADER, "n1\tNew one")
    kg = write(folder / "b1.kg", KG_HEADER, "n1\tfilm.directed_by\tdNEW", "dNEW\tfilm.genre\tg0")
    rec.add_items(items, kg=kg)


def test_a_second_batch_reaches_the_graph_through_an_entity_the_first_batch_made(run_copy: Path, tmp_path: Path):
    """n2's only triple names dNEW, whom only the first batch joined to the graph: on the graph
    the first batch left (read back from the run folder) n2 is two hops from g0, and its vector
    is the model's on that graph. Each batch made dNEW a node of its own before, so n2 reached
    nothing and, without text, was refused."""
    rec = Recommender.open(run_copy)
    first_batch(rec, tmp_path)
    n, g0 = rec.run.graph.n_nodes, rec.run.graph.keys.tolist().index("g0")
    assert "graph" in rec.catalog.added_item(rec.catalog.position("n1")).via

    again = Recommender.open(run_copy)  # the extension is read back from RUN_DIR/catalog
    items = write(tmp_path / "b2.item", ITEM_HEADER, "n2\tNew two")
    kg = write(tmp_path / "b2.kg", KG_HEADER, "n2\tfilm.directed_by\tdNEW")
    added = again.add_items(items, kg=kg)
    assert list(added) == ["n2"]
    assert not any("neither in the run's graph" in note for note in added.notes)
    n1, d, n2 = n, n + 1, n + 2  # nodes in the order the batches made them
    triples = [(n1, "film.directed_by", d), (d, "film.genre", g0), (n2, "film.directed_by", d)]
    want = expected_vector(again, triples, 3, n2)
    got = again.catalog.vectors[again.catalog.position("n2")]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert again.catalog.added_item(again.catalog.position("n2")).via == ("graph",)
    # n1 keeps the vector it was given
    np.testing.assert_array_equal(again.catalog.vectors[again.catalog.position("n1")],
                                  rec.catalog.vectors[rec.catalog.position("n1")])  # fmt: skip
    extension = Recommender.open(run_copy).catalog.graph_extension
    assert extension.entities == {"n1": n1, "dNEW": d, "n2": n2}
    assert len(extension.triples) == 3  # the triple repeated by a later batch is kept once


def test_an_item_linked_to_an_entity_an_earlier_batch_made_takes_its_node(run_copy: Path, tmp_path: Path):
    """a1 is linked to E_new, which a triple joins to genre g1; b1, added later and linked to
    E_new too, is that node with its edge, as a1 is (as two items of one batch linked to one
    entity are). It was a node without edges before, so without text b1 was refused."""
    rec = Recommender.open(run_copy)
    write(tmp_path / "a.item", ITEM_HEADER, "a1\tAlpha")
    write(tmp_path / "a.link", LINK_HEADER, "a1\tE_new")
    write(tmp_path / "a.kg", KG_HEADER, "E_new\tfilm.genre\tg1")
    rec.add_items(tmp_path / "a.item", tmp_path / "a.link", tmp_path / "a.kg")
    write(tmp_path / "b.item", ITEM_HEADER, "b1\tBeta")
    write(tmp_path / "b.link", LINK_HEADER, "b1\tE_new")
    added = rec.add_items(tmp_path / "b.item", tmp_path / "b.link")
    assert not added.notes  # E_new is no unknown entity
    n, g1 = rec.run.graph.n_nodes, rec.run.graph.keys.tolist().index("g1")
    want = expected_vector(rec, [(n, "film.genre", g1)], 1, n)
    vectors = rec.catalog.vectors
    np.testing.assert_allclose(vectors[rec.catalog.position("b1")], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vectors[rec.catalog.position("a1")], want, rtol=1e-5, atol=1e-6)


def test_a_catalog_without_an_extension_reads_as_before(run_copy: Path, tmp_path: Path):
    """A catalog written before extensions were kept holds none: its added items stay, and a
    later batch starts from the stored graph."""
    rec = Recommender.open(run_copy)
    first_batch(rec, tmp_path)
    record_path = run_copy / "catalog" / "catalog.json"
    record = json.loads(record_path.read_text())
    record.pop("graph_extension")
    record_path.write_text(json.dumps(record))
    again = Recommender.open(run_copy)
    assert not again.catalog.graph_extension and again.catalog.position("n1") >= again.catalog.n_base
    write(tmp_path / "c.item", ITEM_HEADER, "c1\tGamma")
    write(tmp_path / "c.kg", KG_HEADER, "c1\tfilm.genre\tg2")
    again.add_items(tmp_path / "c.item", kg=tmp_path / "c.kg")
    assert Recommender.open(run_copy).catalog.graph_extension.entities == {"c1": again.run.graph.n_nodes}


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e.update(first_node=-1),
        lambda e: e["entities"].update(dNEW=10**6),  # not numbered in order
        lambda e: e["triples"].append([0, 0, 10**6]),  # a node beyond the extension
        lambda e: e["entities"].update(x="1"),  # a node that is no integer
        lambda e: e.pop("triples"),
    ],
)
def test_a_damaged_extension_is_one_line(run_copy: Path, tmp_path: Path, damage):
    rec = Recommender.open(run_copy)
    first_batch(rec, tmp_path)
    record_path = run_copy / "catalog" / "catalog.json"
    record = json.loads(record_path.read_text())
    damage(record["graph_extension"])
    record_path.write_text(json.dumps(record))
    with pytest.raises(RetrievalError, match=r"catalog\.json: its graph_extension is damaged; remove .*catalog"):
        Recommender.open(run_copy)


def test_a_value_of_another_kind_than_its_column_is_refused_at_its_line_before_any_work(
    run_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The catalog's ``year`` holds numbers once an item gave one; a later file declaring it
    text is refused at the row's line and column, before the text encoder or the graph runs
    (it surfaced after both, naming the item only)."""
    from kgrec.errors import DataError
    from kgrec.retrieval import coldstart

    rec = Recommender.open(run_copy)
    write(tmp_path / "a.item", "item_id:token\ttitle:token\tyear:float", "a1\tAlpha\t1999")
    write(tmp_path / "a.kg", KG_HEADER, "a1\tfilm.genre\tg0")
    rec.add_items(tmp_path / "a.item", kg=tmp_path / "a.kg")
    write(tmp_path / "b.item", "item_id:token\ttitle:token\tyear:token", "", "b2\tGamma\t2001")  # a blank line
    write(tmp_path / "b.kg", KG_HEADER, "b2\tfilm.genre\tg1")

    def no_work(*args, **kwargs):
        raise AssertionError("embedding started")

    monkeypatch.setattr(coldstart, "_extend_graph", no_work)
    with pytest.raises(DataError, match=r"b\.item:3: column 'year:token': holds numbers in the catalog, got '2001'"):
        rec.add_items(tmp_path / "b.item", kg=tmp_path / "b.kg")
