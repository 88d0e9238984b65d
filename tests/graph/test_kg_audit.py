"""KnowledgeGraph audit: damaged or foreign graph files, save/load round trips of unusual
graphs, inverse relations and the agreement of the views."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgrec.errors import GraphError
from kgrec.graph import KnowledgeGraph
from kgrec.graph.kg import _compact, built_recipe


def small_graph(triples, relations, inverse_of=None, n_items=2, n_entities=1, n_users=0, keys=None, names=None):
    """A graph made by hand: ``triples`` as (head, relation, tail)."""
    n = n_items + n_entities + n_users
    h, r, t = (np.array([x[i] for x in triples], dtype=np.int64) for i in range(3))
    return KnowledgeGraph(
        head=h,
        relation=r,
        tail=t,
        relation_names=np.array(relations, dtype=object),
        inverse_of=np.array([-1] * len(relations) if inverse_of is None else inverse_of, dtype=np.int64),
        node_type=np.repeat(np.array([0, 1, 2], dtype=np.int8), [n_items, n_entities, n_users]),
        names=np.array([f"name {i}" for i in range(n)] if names is None else names, dtype=object),
        keys=np.array([f"k{i}" for i in range(n)] if keys is None else keys, dtype=object),
        n_items=n_items,
        provenance={"dataset": "hand", "split": None, "recipe": {"inverse": True}, "sources": []},
    )


@pytest.fixture
def folder(tmp_path):
    kg = small_graph([(0, 0, 2), (2, 1, 0), (1, 0, 2), (2, 1, 1)], ["r", "r.inv"], inverse_of=[-1, 0])
    return kg.save(tmp_path / "graph")


def rewrite(folder, **changes):
    with np.load(folder / "graph.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    np.savez(folder / "graph.npz", **(arrays | changes))


def test_a_single_npy_array_named_graph_npz_is_refused_with_a_graph_error(folder):
    """``np.load`` gives an ndarray, not an archive, for a ``.npy`` file: ``with`` failed on it
    with a TypeError."""
    with open(folder / "graph.npz", "wb") as handle:
        np.save(handle, np.arange(3))
    with pytest.raises(GraphError, match=r"graph.npz: cannot read graph arrays \(a single .npy array, not an .npz"):
        KnowledgeGraph.load(folder)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("node_type", np.array([False, False, True])),  # arange(3, dtype=bool): TypeError
        ("node_type", np.array(["0", "0", "1"])),  # TypeError
        ("node_type", np.array([0.0, 0.0, 1.0])),  # loaded as if it were integers
        ("inverse_of", np.array(["a", "b"])),  # astype(int64): ValueError
        ("inverse_of", np.array([-1.0, 0.5])),  # truncated to [-1, 0]
    ],
)
def test_node_types_and_inverses_that_are_not_integers_are_refused(folder, name, values):
    rewrite(folder, **{name: values})
    with pytest.raises(GraphError, match=f"array '{name}' has dtype {values.dtype}, expected integers"):
        KnowledgeGraph.load(folder)


@pytest.mark.parametrize("inverse_of", [[-1, 2], [-1, 7], [-2, 0]])
def test_inverse_ids_outside_the_relations_are_refused(folder, inverse_of):
    """``inverse_of`` indexes the relations (holdout, paths, cold start read ``inverse_of[r]``):
    -1 or a relation id, like ``relation`` it is checked when read."""
    rewrite(folder, inverse_of=np.array(inverse_of, dtype=np.int32))
    with pytest.raises(GraphError, match=r"array 'inverse_of' has ids outside \[-1, 2\)"):
        KnowledgeGraph.load(folder)


def test_unsigned_offsets_that_go_backwards_are_refused(folder):
    """``np.diff`` of unsigned offsets wraps around instead of going below 0: [0, 6, 4] over
    the 4 bytes ``k0k1`` was read as the names 'k0k1' and ''."""
    rewrite(folder, **{"item_keys.offsets": np.array([0, 6, 4], dtype=np.uint64)})
    with pytest.raises(GraphError, match="array 'item_keys': its bytes and offsets do not fit together"):
        KnowledgeGraph.load(folder)
    rewrite(folder, **{"item_keys.offsets": np.array([0, 2, 4], dtype=np.uint64)})  # unsigned but in order: fine
    assert list(KnowledgeGraph.load(folder).keys[:2]) == ["k0", "k1"]


def test_graphs_without_triples_relations_or_nodes_round_trip(tmp_path):
    for n, kg in enumerate([
        small_graph([], ["r"], n_items=2, n_entities=0),  # a relation whose triples min_degree dropped
        small_graph([], [], n_items=1, n_entities=0),
        small_graph([], [], n_items=0, n_entities=0),
    ]):
        back = KnowledgeGraph.load(kg.save(tmp_path / f"g{n}"))
        assert back.counts() == kg.counts() and list(back.relation_names) == list(kg.relation_names)
        for name in ("head", "relation", "tail", "inverse_of"):
            assert getattr(back, name).dtype == np.int64 and len(getattr(back, name)) == len(getattr(kg, name))
        assert back.edge_tensors()[0].shape == (2, 0) and back.to_networkx().number_of_nodes() == kg.n_nodes


def test_unicode_empty_and_odd_names_and_users_round_trip_exactly(tmp_path):
    keys = ["é", "\U0001f600", "a\x00", " lead", "", "u\u2028"]
    names = ["Ünïcode", "", "tab\there", "trail\x00", "x" * 300, "user 1"]
    kg = small_graph(
        [(0, 0, 2), (3, 1, 0), (3, 1, 1), (4, 1, 5)], ["r", "interacted"], n_items=2, n_entities=1, n_users=3,
        keys=keys, names=names,
    )
    back = KnowledgeGraph.load(kg.save(tmp_path / "g"))
    assert list(back.keys) == keys and list(back.names) == names
    assert [type(k) for k in back.keys] == [str] * 6
    assert back.node_type.dtype == np.int8 and back.node_type.tolist() == [0, 0, 1, 2, 2, 2]
    assert back.user_offset == 3 and back.n_users == 3 and back.provenance == kg.provenance
    assert back.item_node("é") == 0 and back.item_node(" \U0001f600 ") == 1  # a pasted id's blanks go


def test_views_hold_the_same_typed_edges_and_inverses_reverse_their_relation(build):
    kg = build(users=True, inverse=True, attributes=[{"column": "class", "relation": "item.genre"}])
    triples = sorted(zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist(), strict=True))
    edge_index, edge_type = kg.edge_tensors()
    from_tensors = sorted(zip(*edge_index.tolist(), edge_type.tolist(), strict=True))
    assert from_tensors == sorted((h, t, r) for h, r, t in triples)
    graph = kg.to_networkx()
    from_networkx = sorted((h, r, t) for h, t, r in graph.edges(keys=True))
    assert from_networkx == triples and graph.number_of_nodes() == kg.n_nodes
    assert all(graph.edges[h, t, r]["relation"] == kg.relation_names[r] for h, r, t in triples)
    # items first, then entities, then users; every generated inverse r.inv reverses r
    assert kg.node_type.tolist() == sorted(kg.node_type.tolist()) and (kg.node_type[: kg.n_items] == 0).all()
    assert kg.n_users == 3 and [str(k) for k in kg.keys[kg.user_offset :]] == ["u1", "u2", "u3"]
    as_set = set(triples)
    for r, base in enumerate(kg.inverse_of.tolist()):
        if base < 0:
            assert not kg.relation_names[r].endswith(".inv")
            continue
        assert kg.relation_names[r] == kg.relation_names[base] + ".inv"
        mine = {(h, t) for h, rel, t in triples if rel == r}
        assert mine and mine == {(t, h) for h, rel, t in as_set if rel == base}


def test_ids_that_do_not_fit_int32_are_stored_as_int64():
    assert _compact(np.array([0, 2**31 - 1])).dtype == np.int32
    assert _compact(np.array([0, 2**31])).dtype == np.int64
    assert _compact(np.array([-1, 3])).dtype == np.int64  # never wrapped to a large positive id
    assert np.array_equal(_compact(np.array([5, 2**40])), [5, 2**40])
    assert _compact(np.zeros(0, dtype=np.int64)).dtype == np.int32


def test_built_recipe_reads_the_manifests_recipe_or_nothing(folder):
    assert built_recipe(folder) == {"inverse": True}
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "recipe": "not a dict"}))
    assert built_recipe(folder) == {}
    (folder / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "recipe"}))
    assert built_recipe(folder) == {}
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format": "other"}))
    with pytest.raises(GraphError, match="not a kgrec graph manifest"):
        built_recipe(folder)
