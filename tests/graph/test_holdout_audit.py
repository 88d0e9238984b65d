"""Held-out KG triples on graphs with self-loops (an audit's findings)."""

from __future__ import annotations

import numpy as np

from kgrec.graph import KnowledgeGraph, hold_out_triples
from kgrec.graph.kg import ENTITY, ITEM

ITEMS = [f"i{n}" for n in range(6)]
ENTITIES = ["x", "y", "z"]
# i0 and i1 link to themselves (a KG may: `kgrec data info` counts such triples) and to one entity each
FORWARD = [("i0", "same", "i0"), ("i1", "same", "i1"), ("i0", "rel", "z"), ("i1", "rel", "x"), ("i2", "rel", "x"),
           ("i2", "rel", "y"), ("i3", "rel", "y"), ("i3", "rel", "z"), ("i4", "rel", "y"), ("i5", "rel", "y"),
           ("i4", "rel", "z"), ("i5", "rel", "x")]  # fmt: skip


def looped_graph() -> KnowledgeGraph:
    """Six items, three entities, relations ``same`` (self-loops) and ``rel``, with generated inverses."""
    keys = np.array(ITEMS + ENTITIES)
    node = {k: n for n, k in enumerate(keys.tolist())}
    names = ["same", "rel", "same.inv", "rel.inv"]
    rel = {r: n for n, r in enumerate(names)}
    triples = [(node[h], rel[r], node[t]) for h, r, t in FORWARD]
    triples += [(t, r + 2, h) for h, r, t in triples]
    head, relation, tail = (np.array(column, dtype=np.int64) for column in zip(*triples, strict=True))
    return KnowledgeGraph(
        head=head, relation=relation, tail=tail, relation_names=np.array(names),
        inverse_of=np.array([-1, -1, 0, 1], dtype=np.int64),
        node_type=np.array([ITEM] * len(ITEMS) + [ENTITY] * len(ENTITIES), dtype=np.int8),
        names=keys.copy(), keys=keys, n_items=len(ITEMS),
    )  # fmt: skip


def others(graph: KnowledgeGraph) -> list[set[int]]:
    """Per node, the other nodes it shares a triple with."""
    out: list[set[int]] = [set() for _ in range(graph.n_nodes)]
    for h, t in zip(graph.head.tolist(), graph.tail.tolist(), strict=True):
        if h != t:
            out[h].add(t)
            out[t].add(h)
    return out


def test_a_node_with_a_self_loop_keeps_an_edge_to_another_node():
    """A self-loop was counted as two neighbours: a node's self-loop and its one other pair could
    both be held out, leaving it without any edge, so its vector was never trained."""
    graph = looped_graph()
    before = others(graph)
    for seed in range(30):
        kept, held = hold_out_triples(graph, 0.5, seed)
        after = others(kept)
        assert all(after[n] for n in range(graph.n_nodes) if before[n]), seed
        asked = np.concatenate([held.valid, held.test])
        gone = {(min(h, t), max(h, t)) for h, _, t in asked.tolist()}
        assert not gone & {(min(h, t), max(h, t)) for h, t in zip(kept.head.tolist(), kept.tail.tolist(), strict=True)}


def test_a_node_whose_only_triple_is_a_self_loop_keeps_it():
    graph = looped_graph()
    only = np.array([[9, 0, 9]])  # a tenth node, linked to itself alone
    graph.keys = graph.names = np.append(graph.keys, "w")
    graph.node_type = np.append(graph.node_type, np.int8(ENTITY))
    graph.head = np.append(graph.head, only[:, 0])
    graph.relation = np.append(graph.relation, only[:, 1])
    graph.tail = np.append(graph.tail, only[:, 2])
    for seed in range(30):
        kept = hold_out_triples(graph, 0.5, seed)[0]
        assert ((kept.head == 9) & (kept.tail == 9)).any(), seed
