import numpy as np
import pytest

from kgrec.data import load_dataset
from kgrec.errors import ConfigError
from kgrec.graph import KnowledgeGraph, build_graph, hold_out_triples, recipe_from_dict


@pytest.fixture
def graph(clustered_dataset) -> KnowledgeGraph:
    """60 items in 4 clusters, with directors, genres, item genres, inverses and user edges."""
    recipe = {"inverse": True, "users": True, "attributes": [{"column": "class", "relation": "item.genre"}]}
    return build_graph(load_dataset(clustered_dataset), recipe_from_dict(recipe))


def pairs(head, tail):
    return set(zip(np.minimum(head, tail).tolist(), np.maximum(head, tail).tolist(), strict=True))


def test_held_out_pairs_leave_the_graph_in_every_relation_and_direction(graph):
    kept, held = hold_out_triples(graph, 0.2, seed=0)
    asked = np.concatenate([held.valid, held.test])
    assert not pairs(asked[:, 0], asked[:, 2]) & pairs(kept.head, kept.tail)
    removed = graph.n_triples - kept.n_triples
    assert removed >= 2 * len(asked)  # each held-out triple and its generated inverse, at least
    assert (graph.inverse_of[asked[:, 1]] < 0).all() and graph.relation_id("interacted") not in asked[:, 1]
    assert abs(len(held.valid) - len(held.test)) <= 1
    np.testing.assert_array_equal(held.known, np.stack([graph.head, graph.relation, graph.tail], axis=1))
    before = np.bincount(np.concatenate([graph.head, graph.tail]), minlength=graph.n_nodes) > 0
    after = np.bincount(np.concatenate([kept.head, kept.tail]), minlength=graph.n_nodes) > 0
    assert (after == before).all()  # every node that had a neighbour keeps one


def test_the_draw_is_seeded_and_sized_by_the_share(graph):
    kept, held = hold_out_triples(graph, 0.2, seed=0)
    again = hold_out_triples(graph, 0.2, seed=0)[1]
    np.testing.assert_array_equal(held.test, again.test)
    assert not np.array_equal(held.test, hold_out_triples(graph, 0.2, seed=1)[1].test)
    assert len(hold_out_triples(graph, 0.05, seed=0)[1].test) < len(held.test)
    assert kept.provenance["kg_holdout"]["share"] == 0.2


def test_the_share_must_be_sensible(graph):
    for share in (0, 0.6):
        with pytest.raises(ConfigError, match=r"graph.kg_holdout: expected a share in \(0, 0.5\]"):
            hold_out_triples(graph, share, seed=0)
