"""Summaries of a built graph: relation counts, degrees, connectivity, item coverage; a degree plot.

Degrees count triples touching a node (in + out). Components are weakly connected components
(edge direction ignored), computed with networkx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kgrec.graph._arrays import sorted_unique
from kgrec.graph.kg import NODE_TYPES, KnowledgeGraph
from kgrec.graph.recipe import INTERACTED
from kgrec.utils.io import write_figure


def degrees(kg: KnowledgeGraph) -> np.ndarray:
    """``(N,)`` number of triples touching each node (a self-loop counts twice)."""
    return np.bincount(kg.head, minlength=kg.n_nodes) + np.bincount(kg.tail, minlength=kg.n_nodes)


def graph_stats(kg: KnowledgeGraph) -> dict[str, Any]:
    """A JSON-ready summary of ``kg``.

    Keys: ``dataset``, ``counts``, ``relations`` (name -> triples, most frequent first),
    ``degree`` (per node type and overall: min, max, mean, median, p90, p99), ``isolated_nodes``,
    ``components`` (weakly connected: ``count`` and ``largest`` size), ``items_covered`` (items
    with at least one KG or attribute edge, i.e. any relation but ``interacted``) and its share,
    and the keys of :func:`private_entities`.
    """
    import networkx as nx

    per_relation = np.bincount(kg.relation, minlength=kg.n_relations)
    order = np.argsort(-per_relation, kind="stable")
    degree = degrees(kg)
    summary = {"all": _summary(degree)}
    for code, kind in enumerate(NODE_TYPES):
        if np.any(kg.node_type == code):
            summary[kind] = _summary(degree[kg.node_type == code])

    content = _content_triples(kg)
    touched = np.zeros(kg.n_nodes, dtype=bool)
    touched[kg.head[content]] = True
    touched[kg.tail[content]] = True
    covered = int(np.count_nonzero(touched[: kg.n_items]))

    graph = nx.Graph()
    graph.add_nodes_from(range(kg.n_nodes))
    low, high = np.minimum(kg.head, kg.tail), np.maximum(kg.head, kg.tail)
    pairs = sorted_unique(low * kg.n_nodes + high)
    graph.add_edges_from(zip((pairs // kg.n_nodes).tolist(), (pairs % kg.n_nodes).tolist(), strict=True))
    sizes = sorted((len(c) for c in nx.connected_components(graph)), reverse=True)

    return {
        "dataset": kg.provenance.get("dataset"),
        "counts": kg.counts(),
        "relations": {str(kg.relation_names[r]): int(per_relation[r]) for r in order},
        "degree": summary,
        "isolated_nodes": int(np.count_nonzero(degree == 0)),
        "components": {"count": len(sizes), "largest": sizes[0] if sizes else 0},
        "items_covered": covered,
        "items_covered_share": round(covered / kg.n_items, 4) if kg.n_items else 0.0,
        **private_entities(kg),
    }


def private_entities(kg: KnowledgeGraph) -> dict[str, Any]:
    """How much of the items' one-hop KG neighbourhood is theirs alone.

    An entity one item links to and no other (one hop, in either direction, through any relation
    but ``interacted``) is *private* to that item: trained, its embedding serves that item alone,
    like a second ID embedding, while a new item's graph vector can only draw on what it shares
    with the catalogue. Where private entities make much of an item's neighbourhood, the graph
    pathway says little about new items (README: Cold-start items).

    Keys: ``items_with_private_entity`` (covered items with at least one private entity) and its
    share of the covered items, ``private_entity_share_median`` (the median over covered items of
    the share of their entities that are private) and ``item_entities_median`` (the median
    number of entities per covered item).
    """
    item, entity = _item_entity_pairs(kg)
    private = _owner(item, entity, kg.n_nodes)[entity] >= 0  # per pair
    linked = np.bincount(item, minlength=kg.n_items)
    own = np.bincount(item[private], minlength=kg.n_items)
    covered = linked > 0
    if not covered.any():
        return {"items_with_private_entity": 0, "items_with_private_entity_share": 0.0,
                "private_entity_share_median": 0.0, "item_entities_median": 0.0}  # fmt: skip
    linked, own = linked[covered], own[covered]
    n = int(np.count_nonzero(own))
    return {
        "items_with_private_entity": n,
        "items_with_private_entity_share": round(n / len(linked), 4),
        "private_entity_share_median": round(float(np.median(own / linked)), 4),
        "item_entities_median": float(np.median(linked)),
    }


def private_owner(kg: KnowledgeGraph) -> np.ndarray:
    """``(N,)`` int64: for each entity private to one item (:func:`private_entities`) that
    item's node id, ``-1`` for every other node. Training with ``model.id_dropout_private``
    reads it to encode an item as a new one, without the entities only it links to."""
    return _owner(*_item_entity_pairs(kg), kg.n_nodes)


def _owner(item: np.ndarray, entity: np.ndarray, n_nodes: int) -> np.ndarray:
    """:func:`private_owner` from the distinct (item, entity) pairs."""
    one = np.bincount(entity, minlength=n_nodes)[entity] == 1  # the entity's only pair
    owner = np.full(n_nodes, -1, dtype=np.int64)
    owner[entity[one]] = item[one]
    return owner


def _item_entity_pairs(kg: KnowledgeGraph) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct (item node, entity node) pair one content triple joins, in either
    direction: two aligned int64 arrays."""
    content = _content_triples(kg)
    head, tail = kg.head[content], kg.tail[content]
    is_item = np.arange(kg.n_nodes) < kg.n_items
    is_entity = kg.node_type == NODE_TYPES.index("entity")
    forward = is_item[head] & is_entity[tail]
    backward = is_item[tail] & is_entity[head]
    item = np.concatenate([head[forward], tail[backward]])
    entity = np.concatenate([tail[forward], head[backward]])
    pairs = sorted_unique(item * kg.n_nodes + entity)
    return pairs // kg.n_nodes, pairs % kg.n_nodes


def _content_triples(kg: KnowledgeGraph) -> np.ndarray:
    """``(T,)`` bool: the triples of every relation but ``interacted`` (and its inverse)."""
    interaction = {i for i, n in enumerate(kg.relation_names) if n in (INTERACTED, INTERACTED + ".inv")}
    return ~np.isin(kg.relation, list(interaction)) if interaction else np.ones(kg.n_triples, dtype=bool)


def plot_degrees(kg: KnowledgeGraph, path: str | Path) -> Path:
    """Write a log-log histogram of node degrees (one series per node type), atomically, as PNG or
    the image format ``path``'s suffix names (:func:`~kgrec.utils.io.write_figure`). Isolated
    nodes (degree 0) cannot be placed on a log axis: the legend counts them as not shown."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    degree = degrees(kg)
    figure = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_xscale("log")
    axes.set_yscale("log")
    for code, kind in enumerate(NODE_TYPES):
        values = degree[(kg.node_type == code) & (degree > 0)]
        isolated = int(np.count_nonzero(kg.node_type == code)) - len(values)  # degree 0 has no place on a log axis
        if len(values) + isolated == 0:
            continue
        count = np.bincount(values) if len(values) else np.zeros(1, dtype=np.int64)
        value = np.flatnonzero(count)
        label = f"{kind} ({len(values) + isolated}; {isolated} isolated, not shown)" if isolated else f"{kind} ({len(values)})"
        axes.plot(value, count[value], marker="o", markersize=3, linestyle="none", label=label)  # none plotted: a legend entry still
    name = kg.provenance.get("dataset", "graph")
    axes.set_title(f"Degree distribution: {name} ({kg.n_nodes} nodes, {kg.n_triples} triples)")
    axes.set_xlabel("degree (triples touching the node)")
    axes.set_ylabel("number of nodes")
    axes.grid(True, which="major", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(title="node type")
    figure.tight_layout()
    return write_figure(figure, path)


def _summary(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0.0, "p90": 0.0, "p99": 0.0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "min": int(values.min()),
        "max": int(values.max()),
        "mean": round(float(values.mean()), 3),
        "median": round(float(p50), 3),
        "p90": round(float(p90), 3),
        "p99": round(float(p99), 3),
    }
