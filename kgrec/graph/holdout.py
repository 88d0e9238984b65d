"""Held-out KG triples, to measure link prediction on triples the model never saw.

A share of the graph's node pairs is taken out of it: every triple between the two nodes of a
held-out pair goes, whatever its relation or direction, so neither a generated inverse
(``r.inv``) nor a reverse relation of the source KG (Freebase's ``film.film.directed_by`` /
``film.director.film``) gives the answer away, the leak that made FB15k easy (Toutanova & Chen,
2015). The held-out pairs' forward triples (not generated inverses, not user edges) become the
valid and test triples, half each. A pair is held out only while both of its nodes keep another
neighbour in the graph, so every node that had an edge keeps one and its vector is trained; a
node's self-loop goes only while the node keeps an edge to another node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kgrec.errors import ConfigError
from kgrec.graph.kg import USER, KnowledgeGraph, read_arrays
from kgrec.graph.recipe import INTERACTED
from kgrec.utils.io import atomic_path


@dataclass
class HeldOutTriples:
    """Triples taken out of a graph, ``(T, 3)`` int64 rows ``(head, relation, tail)``: ``valid``
    and ``test``, and ``known``, every triple of the graph before (the filter of the ranks)."""

    valid: np.ndarray
    test: np.ndarray
    known: np.ndarray

    def save(self, path: str | Path) -> None:
        """Write the three arrays as one ``.npz`` (no pickle), atomically."""
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, valid=self.valid, test=self.test, known=self.known)

    @classmethod
    def load(cls, path: str | Path) -> HeldOutTriples:
        """Read what :meth:`save` wrote.

        Raises:
            GraphError: the file is damaged (cut short, not an ``.npz``) or lacks an array."""
        arrays = read_arrays(Path(path), "the held-out KG triples", ("valid", "test", "known"))
        return cls(valid=arrays["valid"], test=arrays["test"], known=arrays["known"])

    def part(self, name: str) -> np.ndarray:
        """``valid`` or ``test``."""
        if name not in ("valid", "test"):
            raise ValueError(f"part: expected 'valid' or 'test', got {name!r}")
        return self.valid if name == "valid" else self.test


def hold_out_triples(graph: KnowledgeGraph, share: float, seed: int) -> tuple[KnowledgeGraph, HeldOutTriples]:
    """The graph without a random ``share`` of its node pairs, and those pairs' forward triples
    split into valid and test (see the module docstring).

    Args:
        graph: a built graph.
        share: the share of the eligible node pairs (joined by a forward, non-user triple) to
            hold out, in ``(0, 0.5]``; fewer go when nodes would lose their last neighbour.
        seed: the draw's seed.

    Raises:
        ConfigError: ``share`` out of range, or no pair can be held out.
    """
    if not 0 < share <= 0.5:
        raise ConfigError(f"graph.kg_holdout: expected a share in (0, 0.5], got {share}")
    head, rel, tail = graph.head, graph.relation, graph.tail
    low, high = np.minimum(head, tail), np.maximum(head, tail)
    pair = low * graph.n_nodes + high  # unordered node pair of every triple
    pairs, pair_of = np.unique(pair, return_inverse=True)
    forward = graph.inverse_of[rel] < 0
    if INTERACTED in set(graph.relation_names.tolist()):
        forward &= rel != graph.relation_id(INTERACTED)
    forward &= (graph.node_type[head] != USER) & (graph.node_type[tail] != USER)
    eligible = np.unique(pair_of[forward])
    # Neighbours per node, counted over distinct pairs; a pair goes only if both ends keep one.
    # Only other nodes count: a self-loop (a, a) goes while a keeps a pair with another node, and
    # never leaves it one fewer (counted as two neighbours, a node's self-loop and its one other
    # pair could both go, leaving it without any edge).
    ends = np.stack([pairs // graph.n_nodes, pairs % graph.n_nodes], axis=1)  # (P, 2)
    loop = ends[:, 0] == ends[:, 1]
    left = np.bincount(ends[~loop].ravel(), minlength=graph.n_nodes)
    target = int(round(share * len(eligible)))
    chosen = []
    for p in np.random.default_rng(seed).permutation(eligible):
        if len(chosen) == target:
            break
        a, b = ends[p]
        if a == b:
            if left[a] > 0:
                chosen.append(p)
        elif left[a] > 1 and left[b] > 1:
            left[a] -= 1
            left[b] -= 1
            chosen.append(p)
    if len(chosen) < 2:
        raise ConfigError(f"graph.kg_holdout={share}: the graph has too few node pairs to hold any out")
    held = np.zeros(len(pairs), dtype=bool)
    held[np.asarray(chosen)] = True
    gone = held[pair_of]
    triples = np.stack([head, rel, tail], axis=1)[gone & forward]
    order = np.random.default_rng(seed + 1).permutation(len(triples))
    half = len(triples) // 2
    kept = dataclasses.replace(
        graph, head=head[~gone], relation=rel[~gone], tail=tail[~gone], _cache={},
        provenance={**graph.provenance, "kg_holdout": {"share": share, "seed": seed, "pairs": len(chosen),
                                                       "triples_removed": int(gone.sum())}},
    )  # fmt: skip
    known = np.stack([head, rel, tail], axis=1)
    return kept, HeldOutTriples(valid=triples[order[:half]], test=triples[order[half:]], known=known)
