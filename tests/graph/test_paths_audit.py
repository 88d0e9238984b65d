"""Relation paths (``kgrec.graph.paths``) against brute-force references on tiny random graphs,
as a helper's audit checked them; the tests marked "before:" failed before their fix."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from kgrec.errors import GraphError
from kgrec.graph import (
    KnowledgeGraph,
    find_paths,
    format_path,
    prepare_paths,
    relation_labels,
    short_relation,
)
from kgrec.graph.kg import ENTITY, ITEM
from kgrec.graph.recipe import pattern_matches


def hand_graph(triples, relations, n_nodes, n_items, inverse=False) -> KnowledgeGraph:
    """A graph made by hand from ``(head, relation, tail)``; ``inverse`` adds ``NAME.inv``
    relations reversing every triple, as the builder generates them."""
    names, inverse_of = list(relations), [-1] * len(relations)
    triples = list(triples)
    if inverse:
        base = len(relations)
        names += [f"{r}.inv" for r in relations]
        inverse_of += list(range(base))
        triples += [(t, r + base, h) for h, r, t in triples]
    h, r, t = (np.asarray([x[i] for x in triples], dtype=np.int64).reshape(-1) for i in range(3))
    return KnowledgeGraph(
        head=h,
        relation=r,
        tail=t,
        relation_names=np.asarray(names, dtype=object),
        inverse_of=np.asarray(inverse_of, dtype=np.int64),
        node_type=np.asarray([ITEM] * n_items + [ENTITY] * (n_nodes - n_items), dtype=np.int8),
        names=np.asarray([f"n{i}" for i in range(n_nodes)], dtype=object),
        keys=np.asarray([f"k{i}" for i in range(n_nodes)], dtype=object),
        n_items=n_items,
    )


def random_graph(rng: random.Random) -> KnowledgeGraph:
    """Up to 8 nodes and 20 triples: self-loops, duplicate triples, several relations between
    two nodes, isolated nodes and generated inverses all come up."""
    n_nodes = rng.randint(2, 8)
    relations = rng.choice([["a.x", "b.x"], ["film.genre", "item.genre", "dir"], ["r"]])
    triples = [
        (rng.randrange(n_nodes), rng.randrange(len(relations)), rng.randrange(n_nodes))
        for _ in range(rng.randint(0, 20))
    ]
    return hand_graph(triples, relations, n_nodes, rng.randint(1, n_nodes), inverse=rng.random() < 0.5)


def excluded_ids(kg: KnowledgeGraph, patterns: list[str]) -> set[int]:
    matched = {i for i, name in enumerate(kg.relation_names) if any(pattern_matches(str(name), p) for p in patterns)}
    inverses = {r for r in range(kg.n_relations) if kg.inverse_of[r] in matched}
    return matched | inverses | {int(kg.inverse_of[r]) for r in matched if kg.inverse_of[r] >= 0}


def all_simple_paths(kg: KnowledgeGraph, s: int, t: int, max_hops: int, excluded: set[int]):
    """Every simple path from ``s`` to ``t`` of at most ``max_hops`` hops (depth first), and the
    distinct-neighbour degrees of the graph without the ``excluded`` relations."""
    adjacent: dict[int, set[int]] = {v: set() for v in range(kg.n_nodes)}
    for a, r, b in zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist(), strict=True):
        if r not in excluded and a != b:
            adjacent[a].add(b)
            adjacent[b].add(a)
    found: list[tuple[int, ...]] = []

    def extend(path: list[int]) -> None:
        if path[-1] == t:
            found.append(tuple(path))
        elif len(path) - 1 < max_hops:
            for w in adjacent[path[-1]] - set(path):
                extend([*path, w])

    if s != t:
        extend([s])
    return found, {v: len(ns) for v, ns in adjacent.items()}


def edges(kg: KnowledgeGraph, h: int, t: int, excluded: set[int]) -> set[int]:
    return {int(r) for a, r, b in zip(kg.head, kg.relation, kg.tail, strict=True) if (a, b) == (h, t)} - excluded


def check_hop(kg: KnowledgeGraph, hop, excluded: set[int]) -> None:
    """The hop's relations: the non-generated ones when any joins the nodes (else the generated
    ones), in the direction leaving an item when both directions have some, else along the path."""
    forward, backward = edges(kg, hop.source, hop.target, excluded), edges(kg, hop.target, hop.source, excluded)
    generated = {r for r in forward | backward if kg.inverse_of[r] >= 0}
    if (forward | backward) - generated:
        forward, backward = forward - generated, backward - generated
    into_item = kg.node_type[hop.target] == ITEM and kg.node_type[hop.source] != ITEM
    want_forward = bool(forward) and not (backward and into_item)
    assert hop.forward == want_forward
    assert set(hop.relations) == (forward if want_forward else backward)
    assert list(hop.relations) == sorted(hop.relations) and hop.relations


def test_find_paths_agrees_with_brute_force_on_random_graphs():
    """Count, fewest hops first, then the least connected inner nodes (the sum of their
    log-degrees), max_hops, exclusions with their inverses, each hop's relations and direction;
    several exclusion sets on one graph (its cached views)."""
    rng = random.Random(20240611)
    compared = by_degree = 0
    for _ in range(400):
        kg = random_graph(rng)
        for _ in range(5):
            patterns = list(rng.choice([(), ("a.*",), ("*.x.inv",), ("r",), ("dir", "none"), ("item.genre.inv",)]))
            s, t = rng.randrange(kg.n_nodes), rng.randrange(kg.n_nodes)
            n, max_hops = rng.choice([-1, 0, 1, 1, 2, 2, 3, 50]), rng.choice([None, 0, 1, 2, 3])
            excluded = excluded_ids(kg, patterns)
            everything, degree = all_simple_paths(kg, s, t, kg.n_nodes if max_hops is None else max_hops, excluded)

            def key(nodes, degree=degree):
                return len(nodes), sum(math.log1p(degree[v]) for v in nodes[1:-1])

            got = find_paths(kg, s, t, n=n, max_hops=max_hops, exclude=patterns)
            nodes = [p.nodes for p in got]
            assert len(nodes) == min(max(n, 0), len(everything)) and len(set(nodes)) == len(nodes)
            assert set(nodes) <= set(everything)
            keys = [key(p) for p in nodes]
            by_degree += sum(a[0] == b[0] and a[1] < b[1] - 1e-9 for a, b in zip(keys, keys[1:], strict=False))
            assert all(a[0] < b[0] or (a[0] == b[0] and a[1] <= b[1] + 1e-9) for a, b in zip(keys, keys[1:], strict=False))
            left = [key(p) for p in everything if p not in nodes]
            if keys and left:
                worst, best_left = max(keys), min(left)
                assert worst[0] < best_left[0] or (worst[0] == best_left[0] and worst[1] <= best_left[1] + 1e-9)
                by_degree += any(k[0] == worst[0] and k[1] > worst[1] + 1e-9 for k in left)
            for path in got:
                assert len(path.hops) == len(path.nodes) - 1
                assert [(h.source, h.target) for h in path.hops] == list(zip(path.nodes, path.nodes[1:], strict=False))
                for hop in path.hops:
                    check_hop(kg, hop, excluded)
            compared += bool(everything)
    assert compared > 600 and by_degree > 40  # the random graphs did exercise the tie-break


def test_cached_views_are_per_exclusion_set():
    """Interleaved exclusion sets on one graph give what a fresh graph gives for each; patterns
    naming the same relations share one view."""
    triples = [(0, 0, 2), (2, 0, 1), (0, 1, 3), (3, 1, 1)]  # 0 -a- 2 -a- 1, 0 -b- 3 -b- 1
    make = lambda: hand_graph(triples, ["a", "b"], 4, 2, inverse=True)  # noqa: E731
    kg = make()
    for exclude in (["a"], ["b"], [], ["a.inv"], ["b"], ["*"], []):
        assert find_paths(kg, 0, 1, n=5, exclude=exclude) == find_paths(make(), 0, 1, n=5, exclude=exclude)
    assert [p.nodes for p in find_paths(kg, 0, 1, exclude=["a"])] == [(0, 3, 1)]
    assert [p.nodes for p in find_paths(kg, 0, 1, exclude=["b.inv"])] == [(0, 2, 1)]
    assert len(kg._cache["undirected"]) == 4  # {}, {a, a.inv}, {b, b.inv}, everything


def test_a_single_string_exclude_is_one_pattern():
    """before: ``exclude="b"`` was read as its characters; ``"b.*"`` held ``*``, which excluded
    every relation (no path at all), and ``"interacted"`` excluded nothing."""
    kg = hand_graph([(0, 0, 2), (2, 0, 1), (0, 1, 3), (3, 1, 1)], ["a.x", "b.y"], 4, 2)
    assert find_paths(kg, 0, 1, exclude="b.*") == find_paths(kg, 0, 1, exclude=["b.*"])
    assert [p.nodes for p in find_paths(kg, 0, 1, exclude="b.*")] == [(0, 2, 1)]
    assert [p.nodes for p in find_paths(kg, 0, 1, exclude="a.x")] == [(0, 3, 1)]
    prepare_paths(kg, "a.x")
    assert frozenset({0}) in kg._cache["undirected"]


def test_numpy_node_ids_give_paths_of_plain_ints():
    """before: the ends of a path found from numpy ids (catalog positions) were numpy integers,
    its middle Python ints; ``json.dumps(path.nodes)`` failed."""
    kg = hand_graph([(0, 0, 2), (1, 0, 2)], ["a"], 3, 2)
    (path,) = find_paths(kg, np.int64(0), np.int64(1))
    assert all(type(v) is int for v in path.nodes)
    assert all(type(v) is int for hop in path.hops for v in (hop.source, hop.target))
    assert json.dumps(path.nodes) == "[0, 2, 1]"
    with pytest.raises(TypeError):
        find_paths(kg, 0.5, 1)


def test_edge_cases_same_node_no_paths_isolated_and_out_of_range():
    kg = hand_graph([(0, 0, 2), (1, 0, 2), (2, 0, 2), (0, 0, 2)], ["a"], 4, 2)  # node 3 isolated; a self-loop
    assert find_paths(kg, 0, 0) == [] and find_paths(kg, 0, 1, n=0) == [] and find_paths(kg, 0, 1, n=-2) == []
    assert find_paths(kg, 0, 3) == [] and find_paths(kg, 3, 0) == []
    assert find_paths(kg, 0, 1, max_hops=1) == [] and len(find_paths(kg, 0, 1, max_hops=2)) == 1
    (path,) = find_paths(kg, 0, 1, n=10)  # the duplicate triple and the self-loop add no path
    assert path.hops[0].relations == (0,)
    for bad in (-1, 4):
        with pytest.raises(GraphError, match=r"is not a node of the graph \(0 \.\. 3\)"):
            find_paths(kg, bad, 0)
        with pytest.raises(GraphError, match="target node"):
            find_paths(kg, 0, bad)


def test_parallel_relations_are_all_listed_and_formatted():
    # 0 -a|b-> 2 <-a- 1, with a's generated inverse (never shown beside the originals)
    kg = hand_graph([(0, 0, 2), (0, 1, 2), (1, 0, 2)], ["x.a", "y.a"], 3, 2, inverse=True)
    (path,) = find_paths(kg, 0, 1)
    assert path.hops[0].relations == (0, 1)
    assert format_path(kg, path) == "n0 -x.a|y.a-> n2 <-x.a- n1"


def test_a_hub_two_hops_away_still_beats_three_hops_through_rare_nodes():
    """The weights keep any path's extra below one hop on a larger graph: a hub joined to every
    node (degree n - 1) against a three-hop chain of degree-2 nodes."""
    n = 20_000
    hub = 2
    triples = [(0, 0, hub), (1, 0, hub), *((hub, 0, v) for v in range(5, n)), (0, 0, 3), (3, 0, 4), (4, 0, 1)]
    kg = hand_graph(triples, ["r"], n, 2)
    assert [p.nodes for p in find_paths(kg, 0, 1, n=2)] == [(0, 2, 1), (0, 3, 4, 1)]


def test_relation_labels_are_unique_among_random_names():
    """``short_relation`` keeps as many last segments as tell names apart: two distinct names
    never get one label, whatever their segments (inverse suffixes included)."""
    rng = random.Random(7)
    segments = ["a", "b", "genre", "inv", "x.inv", ""]
    for _ in range(3000):
        names: set[str] = set()
        size = rng.randint(2, 5)
        while len(names) < size:
            names.add(".".join(rng.choice(segments) for _ in range(rng.randint(1, 3))))
        ordered = tuple(sorted(names))
        labels = relation_labels(ordered)
        assert len(set(labels)) == len(labels), (ordered, labels)
        assert labels == tuple(short_relation(name, ordered) for name in ordered)
        for name, label in zip(ordered, labels, strict=True):
            assert name == label or name.endswith("." + label)  # last segments of the name
