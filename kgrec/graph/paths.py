"""Relation paths between nodes: find them (structured), then format them for people.

:func:`find_paths` searches the undirected view of the graph (networkx) for the shortest simple
paths between two nodes, fewest hops first; among paths with as many hops, the one through less
connected nodes comes first (a shared director explains more than a shared language). Each hop
keeps the direction of its edges, so :func:`format_path` can print::

    Star Wars (1977) -directed_by-> m.0343h <-directed_by- Return of the Jedi (1983)

The structured :class:`GraphPath` is what a later "why was this recommended" feature reuses.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from kgrec.errors import GraphError
from kgrec.graph._arrays import sorted_unique
from kgrec.graph.kg import ITEM, KnowledgeGraph
from kgrec.graph.recipe import INTERACTED, pattern_matches


@dataclass(frozen=True)
class Hop:
    """One step of a path, from ``source`` to ``target`` (in path order).

    Attributes:
        source, target: node ids.
        relations: ids of the relations joining them in the shown direction.
        forward: ``True`` if those edges point ``source -> target``, ``False`` if
            ``target -> source``.
    """

    source: int
    target: int
    relations: tuple[int, ...]
    forward: bool


@dataclass(frozen=True)
class GraphPath:
    """A path as its nodes and hops (``len(hops) == len(nodes) - 1``)."""

    nodes: tuple[int, ...]
    hops: tuple[Hop, ...]

    def __len__(self) -> int:
        return len(self.hops)


def find_paths(
    kg: KnowledgeGraph,
    source: int,
    target: int,
    n: int = 3,
    max_hops: int | None = None,
    exclude: Iterable[str] = (),
) -> list[GraphPath]:
    """Up to ``n`` shortest simple paths between nodes ``source`` and ``target``.

    Args:
        kg: the graph.
        source, target: node ids.
        n: how many paths at most.
        max_hops: ignore paths longer than this (``None``: no limit).
        exclude: relation names or shell patterns whose edges the paths may not use
            (e.g. ``["interacted"]`` to explain through content only); a single string is one
            pattern.

    Returns:
        Paths ordered by hop count, then by how specific their inner nodes are; empty when
        the nodes are not connected (or are the same node).
    """
    import networkx as nx

    source, target = operator.index(source), operator.index(target)  # numpy ints: paths hold plain ints
    for name, node in (("source", source), ("target", target)):
        if not 0 <= node < kg.n_nodes:
            raise GraphError(f"{name} node {node} is not a node of the graph (0 .. {kg.n_nodes - 1})")
    if source == target or n <= 0:
        return []
    excluded = _excluded_relations(kg, _patterns(exclude))
    graph = _undirected(kg, excluded)
    found = []
    try:
        for nodes in itertools.islice(nx.shortest_simple_paths(graph, source, target, weight="weight"), n):
            if max_hops is not None and len(nodes) - 1 > max_hops:
                break
            found.append(
                GraphPath(tuple(nodes), tuple(_hop(kg, a, b, excluded) for a, b in itertools.pairwise(nodes)))
            )
    except nx.NetworkXNoPath:
        pass
    return found


def prepare_paths(kg: KnowledgeGraph, exclude: Iterable[str] = ()) -> None:
    """Build the undirected view :func:`find_paths` searches with these ``exclude`` patterns,
    kept on ``kg``, so that its first call does not wait for it (networkx; about half a second
    on ml-100k)."""
    _undirected(kg, _excluded_relations(kg, _patterns(exclude)))


def short_relation(name: str, among: Sequence[str] = ()) -> str:
    """Display name of a relation: its last dot-separated segment (``film.film.directed_by`` ->
    ``directed_by``), or as many last segments as tell it apart from the other relations
    ``among`` (``item.genre`` and ``film.film.genre`` -> ``item.genre`` and ``film.genre``);
    generated inverses keep their suffix (``directed_by.inv``)."""
    base, inverse = (name[: -len(".inv")], ".inv") if name.endswith(".inv") else (name, "")
    others = {o[: -len(".inv")] if o.endswith(".inv") else o for o in among} - {base}
    parts = base.split(".")
    for n in range(1, len(parts)):
        label = ".".join(parts[-n:])
        if not any(o == label or o.endswith("." + label) for o in others):
            return label + inverse
    return base + inverse


def relation_labels(relation_names: Sequence[object]) -> tuple[str, ...]:
    """:func:`short_relation` of each relation among all of them (a graph's ``relation_names``),
    worked out once per set of names rather than once per path printed."""
    return _labels(tuple(str(r) for r in relation_names))


@functools.lru_cache(maxsize=16)
def _labels(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(short_relation(name, names) for name in names)


def format_path(kg: KnowledgeGraph, path: GraphPath, short: bool = True) -> str:
    """One readable line: ``A -rel-> B <-rel- C``; parallel relations joined by ``|``."""
    labels = relation_labels(kg.relation_names) if short else [str(r) for r in kg.relation_names]
    parts = [str(kg.names[path.nodes[0]])]
    for hop in path.hops:
        label = "|".join(labels[r] for r in hop.relations)
        parts.append(f"-{label}->" if hop.forward else f"<-{label}-")
        parts.append(str(kg.names[hop.target]))
    return " ".join(parts)


def explain_paths(kg: KnowledgeGraph, from_item: str, to_item: str, n: int = 3) -> list[str]:
    """Up to ``n`` shortest relation paths between two items (raw item ids or titles), formatted.
    Paths use content relations only: a collaborative graph's ``interacted`` edges are left out,
    as in recommendations' explanations (through a user, any two items they both rated meet).

    Raises:
        GraphError: an unknown item id, or the same item twice.
    """
    source, target = kg.item_node(from_item), kg.item_node(to_item)
    if source == target:
        raise GraphError(f"--from and --to are the same item '{from_item}': expected two different items")
    return [format_path(kg, p) for p in find_paths(kg, source, target, n=n, exclude=[INTERACTED])]


def _patterns(exclude: Iterable[str]) -> tuple[str, ...]:
    """The ``exclude`` patterns as a tuple; a lone string is one pattern, not its characters
    (``"item.*"`` read as ``i``, ``t``, ..., ``*`` excluded every relation)."""
    return (exclude,) if isinstance(exclude, str) else tuple(exclude)


def _excluded_relations(kg: KnowledgeGraph, patterns: tuple[str, ...]) -> frozenset[int]:
    """Relations whose name matches a pattern, with their generated inverses (and the relations
    an excluded inverse reverses): paths are undirected, so a relation and its inverse go together."""
    matched = {i for i, name in enumerate(kg.relation_names) if any(pattern_matches(str(name), p) for p in patterns)}
    inverses = {int(r) for r, of in enumerate(kg.inverse_of.tolist()) if of in matched}
    reversed_ = {int(kg.inverse_of[r]) for r in matched if kg.inverse_of[r] >= 0}
    return frozenset(matched | inverses | reversed_)


def _undirected(kg: KnowledgeGraph, excluded: frozenset[int]):
    """The undirected simple graph (cached per exclusion set), weighted so that the shortest
    path has the fewest hops and, among those, passes through the least connected nodes."""
    import networkx as nx

    cache = kg._cache.setdefault("undirected", {})
    if excluded in cache:
        return cache[excluded]
    keep = ~np.isin(kg.relation, list(excluded)) if excluded else slice(None)
    head, tail = kg.head[keep], kg.tail[keep]
    low, high = np.minimum(head, tail), np.maximum(head, tail)
    n = kg.n_nodes
    pairs = sorted_unique(low[low != high] * n + high[low != high])
    low, high = pairs // n, pairs % n
    degree = np.bincount(low, minlength=n) + np.bincount(high, minlength=n)
    # Each hop costs 1 plus less than 1/n, so any path's extra stays below one hop.
    specificity = np.log1p(degree) / np.log1p(degree.max() + 1)
    extra = (specificity[low] + specificity[high]) / (2 * n)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(zip(low.tolist(), high.tolist(), (1.0 + extra).tolist(), strict=True))
    cache[excluded] = graph
    return graph


def _out_edges(kg: KnowledgeGraph, node: int) -> np.ndarray:
    """Triple rows with ``head == node``."""
    index = kg._cache.get("by_head")
    if index is None:
        order = np.argsort(kg.head, kind="stable")
        index = kg._cache["by_head"] = (order, kg.head[order])
    order, sorted_head = index
    lo, hi = np.searchsorted(sorted_head, [node, node + 1])
    return order[lo:hi]


def _hop(kg: KnowledgeGraph, a: int, b: int, excluded: frozenset[int]) -> Hop:
    """The edges between ``a`` and ``b`` in one direction. Relations the builder generated
    (``.inv``) are shown only when nothing else joins the two nodes. When both directions
    exist, the one leaving an item wins (``A -genre-> X <-genre- B`` reads better than
    ``A -genre-> X -films_in_this_genre-> B``), else the one along the path."""

    def relations(h: int, t: int, generated: bool) -> tuple[int, ...]:
        rows = _out_edges(kg, h)
        found = {int(r) for r in kg.relation[rows[kg.tail[rows] == t]]} - excluded
        return tuple(sorted(r for r in found if (kg.inverse_of[r] >= 0) == generated))

    for generated in (False, True):
        forward, backward = relations(a, b, generated), relations(b, a, generated)
        if forward and backward and kg.node_type[b] == ITEM and kg.node_type[a] != ITEM:
            return Hop(a, b, backward, False)
        if forward:
            return Hop(a, b, forward, True)
        if backward:
            return Hop(a, b, backward, False)
    raise GraphError(f"internal: no edge between nodes {a} and {b}")  # pragma: no cover
