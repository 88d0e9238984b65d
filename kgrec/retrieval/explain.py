"""Why a result was returned: knowledge-graph paths, shared attributes, matching words.

Every result gets an :class:`Explanation`, the first of these that exists:

1. **KG paths** (``kind="kg_path"``). For ``recommend``: from the user's highly rated training
   items (rating >= the model's ``like_threshold``; all training items when none is), the
   ``max_history`` closest to the result by cosine of their retrieval vectors (centred, as
   ``similar`` scores them) are tried, and the ``max_paths`` best paths kept: fewest hops, then
   through readable nodes only, then from the closest history item. For ``similar``: between
   the query item and the result (and, for items with training interactions, how many of the
   users who liked the query item also liked the result). Paths use content relations only
   (``interacted`` edges are left out) and are searched in bounded time: a direct edge, then shared neighbours (2 hops; neighbours with a
   readable name first, then the least connected, as :func:`kgrec.graph.find_paths` orders
   them: a shared director says more than a shared language; with a KGAT graph encoder, the
   neighbour both items attend to most, α(a ← c) · α(b ← c), instead of the least connected),
   then, for the
   ``slow_pairs`` closest pairs only, :func:`kgrec.graph.find_paths` up to ``max_hops`` (in the
   stored graph). Added items (``add-items``) are the nodes the catalog's graph extension gave
   them, and the 2-hop search passes through the new entities it holds (a new director two added
   films share), named by their KG id.
   Printed as ``you rated Star Wars (1977) highly -directed_by-> George Lucas <-directed_by-
   Return of the Jedi (1983)``.
2. **Shared attributes** (``kind="attributes"``): item columns (genres, year ...) the result
   shares with a history item (or with the query item).
3. **Close items** (``kind="similar_items"``): the history items nearest to the result in the
   model's item space, when neither paths nor attributes connect them.

For ``search`` (``kind="text_match"``): query words that match the result's title or column
values, otherwise the text score. Words are runs of Unicode letters and digits, compared without
case or accents ("cafe" ~ "Café"), and two words match when they are the same word up to a
common English ending (:data:`SUFFIXES`: "films" ~ "film", "comedies" ~ "Comedy", "animated" ~
"Animation"); a shared beginning alone is no match ("animal" is not "Animation", "romantic" is
not "Roman").
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgrec.data.dataset import find_title_column
from kgrec.graph import GraphPath, Hop, KnowledgeGraph, find_paths, prepare_paths, relation_labels
from kgrec.graph.kg import ENTITY, ITEM
from kgrec.graph.recipe import INTERACTED, INVERSE_SUFFIX
from kgrec.retrieval.catalog import Catalog
from kgrec.text.templates import LABELS
from kgrec.utils.names import without_accents

STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of", "on", "or",
     "the", "to", "with", "about", "film", "films", "movie", "movies", "something", "some", "want", "like",
     "likes", "i", "me", "my", "we", "our", "you", "your")
)  # fmt: skip
_WORD = re.compile(r"\w+")
#: Endings that leave the same word: ``(ending, shortest stem left)``. Inflections may leave three
#: letters ("wars" -> "war", "acted" -> "act"); the others four, so that "early" is not "ear".
SUFFIXES = (("s", 3), ("es", 3), ("ies", 3), ("ed", 3), ("ing", 3), ("ly", 4), ("ion", 4), ("ions", 4), ("al", 4))
#: What must come before an ending for it to come off: "es" after a sibilant ("boxes", not
#: "James" -> "jam"), "ion" after "t" ("animation", not "mission" -> "miss"). No "er": "dancer"
#: and "mother" look alike ("moth"), and "corner" is not "corn".
_BEFORE = {"es": ("s", "x", "z", "ch", "sh"), "ion": ("t",), "ions": ("t",)}
_NOT_PLURAL = ("ss", "us", "is")  # a final "s" that is part of the word: "miss", "virus", "analysis"
_THREE_LETTERS = re.compile(r"[^\W\d_]{3}")
_MACHINE_ID = re.compile(r"[a-z]\.[0-9a-z_]+")  # Freebase's m.0kprd8, g.11b6vx3w5q


def reads_as_a_name(token: str) -> bool:
    """Whether a KG entity's raw id reads as a name (``"Elizabeth II"``, ``"belly fat"``) rather
    than a code (``"m.0343h"``, ``"m.0kprd8"``, ``"Q42"``, ``"12345"``, ``"g2"``): it holds three
    letters in a row and is not a Freebase machine id (one letter, a dot, lowercase letters and
    digits)."""
    return _THREE_LETTERS.search(token) is not None and _MACHINE_ID.fullmatch(token) is None


@dataclass(frozen=True)
class ExplanationPath:
    """One KG path: graph node ids (``path.nodes``, positions in the run's graph file, then the
    nodes of the catalog's graph extension as ``add-items`` numbered them), their
    raw ids (``ids``: item ids, KG entity ids, ``relation=value`` for attribute values) and
    display names, and per hop the relations (``relations``: their names) and direction."""

    path: GraphPath
    names: tuple[str, ...]
    text: str
    from_item: str | None = None
    attention: float | None = None  # KGAT: how much both ends attend to the path's middle node
    ids: tuple[str, ...] = ()
    relations: tuple[tuple[str, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The path as JSON (``--json``, the HTTP answers): raw ids and relation names, which
        mean the same in the dataset's files, not the graph's internal numbers."""
        out = {
            "from_item": self.from_item,
            "ids": list(self.ids),
            "names": list(self.names),
            "hops": [
                {"relations": list(relations), "forward": hop.forward}
                for hop, relations in zip(self.path.hops, self.relations, strict=True)
            ],
            "text": self.text,
        }
        if self.attention is not None:
            out["attention"] = self.attention
        return out


@dataclass(frozen=True)
class Explanation:
    """Why one result was returned.

    Attributes:
        kind: ``kg_path``, ``attributes``, ``similar_items``, ``text_match``, ``text_score``
            or ``model_score``.
        text: one line for people.
        paths: the KG paths (``kind="kg_path"``).
        attributes: shared or matched ``column: value`` strings.
        related_items: raw ids of the history (or query) items the explanation starts from.
        co_liked: ``(both, query)``: training users who liked both the result and the item the
            explanation starts from (``similar``'s query item, or the first of
            ``related_items`` for a user), and who liked that item (interacted with, in data
            without ratings); ``None`` when either item has no training interactions.
    """

    kind: str
    text: str
    paths: tuple[ExplanationPath, ...] = ()
    attributes: tuple[str, ...] = ()
    related_items: tuple[str, ...] = field(default=())
    co_liked: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The explanation as JSON (``--json``, the HTTP answers)."""
        return {
            "kind": self.kind,
            "text": self.text,
            "paths": [p.to_dict() for p in self.paths],
            "attributes": list(self.attributes),
            "related_items": list(self.related_items),
            "co_liked": {"both": self.co_liked[0], "query": self.co_liked[1]} if self.co_liked else None,
        }

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class HistoryItem:
    """A catalog position the user interacted with in training, and the rating (``None``: no
    ratings); ``liked`` marks the items a new user said they like."""

    position: int
    rating: float | None
    liked: bool = False


class Explainer:
    """Builds :class:`Explanation` s over one run's graph and catalog (see the module docstring).

    Args:
        graph: the run's knowledge graph (``None``: attributes and similarity only).
        catalog: the run's catalog (titles, columns, retrieval vectors).
        max_paths: paths per result.
        max_history: history items tried per result.
        max_hops: the longest path searched by the slow path.
        slow_pairs: (history item, result) pairs per result that may use the slow path.
        like_threshold: ratings at or above it count as "rated highly".
        centre: ``(d,)`` subtracted from the retrieval vectors before their cosine ("closest",
            "close in the model's item space"): the recommender's ``item_centre``, so that the
            cosine shown is the score ``similar`` gives.
        liked_by: per catalog position of a trained item, the sorted training users who liked it
            (:func:`liked_users`); gives the explanations their co-liked counts.
        liked_verb: how the counts name a user's tie to an item ("liked", "interacted with").
        attention: a KGAT encoder's ``(source, target, alpha)`` per edge
            (:meth:`~kgrec.models.MultiTaskRecommender.graph_attention`): shared neighbours are
            then ordered by how much both items attend to them, and 2-hop paths carry that weight.
    """

    def __init__(
        self,
        graph: KnowledgeGraph | None,
        catalog: Catalog,
        max_paths: int = 3,
        max_history: int = 5,
        max_hops: int = 3,
        slow_pairs: int = 1,
        like_threshold: float = 4.0,
        centre: np.ndarray | None = None,
        liked_by: Sequence[np.ndarray] | None = None,
        liked_verb: str = "liked",
        attention: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.kg = graph
        self.catalog = catalog
        self.max_paths = max_paths
        self.max_history = max_history
        self.max_hops = max_hops
        self.slow_pairs = slow_pairs
        self.like_threshold = like_threshold
        vectors = catalog.vectors - centre if centre is not None else catalog.vectors
        self._unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.liked_by = liked_by
        self.liked_verb = liked_verb
        self._attention: tuple[np.ndarray, np.ndarray] | None = None  # sorted (target * N + source), alpha
        if graph is not None:
            self._index_graph(graph)
            self._index_extension(graph)
            if attention is not None:
                self._index_attention(graph.n_nodes, *attention)

    # ------------------------------------------------------------------ graph structure
    def _index_graph(self, kg: KnowledgeGraph) -> None:
        excluded = {
            i for i, name in enumerate(kg.relation_names) if str(name) in (INTERACTED, INTERACTED + INVERSE_SUFFIX)
        }
        keep = ~np.isin(kg.relation, list(excluded)) if excluded else np.ones(kg.n_triples, dtype=bool)
        head, rel, tail = kg.head[keep], kg.relation[keep], kg.tail[keep]
        n = kg.n_nodes
        self._excluded = frozenset(excluded)
        # Directed triples sorted by (head, tail): the relations of a pair by binary search.
        key = head * n + tail
        order = np.argsort(key, kind="stable")
        self._pair_key, self._pair_rel = key[order], rel[order]
        # Undirected neighbour lists (CSR), deduplicated.
        src = np.concatenate([head, tail])
        dst = np.concatenate([tail, head])
        pairs = np.unique(src * n + dst)
        src, dst = pairs // n, pairs % n
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])
        self._nbr = dst
        self._degree = np.diff(self._indptr)
        # Nodes people can read: items, users, and entities whose name is not their raw id
        # (attribute values like "Drama") or whose id is itself a name ("Elizabeth II"), not a
        # code (ml-100k's Freebase entities are bare ids like m.0343h).
        names = kg.names.astype(str)
        reads = np.fromiter((reads_as_a_name(name) for name in names), dtype=bool, count=len(names))
        self._named = (kg.node_type != ENTITY) | (names != kg.keys.astype(str)) | reads

    def _index_extension(self, kg: KnowledgeGraph) -> None:
        """The catalog's graph extension (:class:`~kgrec.retrieval.catalog.GraphExtension`), numbered
        as ``add-items`` numbered it: nodes ``n_nodes ..`` are its new entities, named by their
        token, and the added items without an anchor that are one of them (its ``"\\0" + id``
        entity, or the entity of their own id that their recorded links agree with), named by
        their title; its triples are edges of stored nodes too. An added item that is none of its
        nodes (added before the catalog kept one, or linked to a new entity of another name) is
        node ``end + position - n_base`` after it, with its recorded links to stored nodes. An
        extension made on another graph is left out."""
        n, catalog, extension = kg.n_nodes, self.catalog, self.catalog.graph_extension
        usable = bool(extension) and extension.first_node == n
        keys = sorted(extension.entities, key=extension.entities.__getitem__) if usable else []
        triples = extension.triples if usable else ()
        self._end = n + len(keys)  # nodes of added items that are no extension node: from here
        self._ext_pairs: dict[tuple[int, int], set[int]] = {}  # (head, tail) -> relations
        joined: dict[int, set[int]] = {}
        stored_edges: dict[int, set[tuple[int, int, int]]] = {}  # as AddedItem.links records them
        for h, r, t in triples:
            if t < n:
                stored_edges.setdefault(h, set()).add((r, t, 1))
            if h < n:
                stored_edges.setdefault(t, set()).add((r, h, 0))
            if r not in self._excluded and h != t:
                self._ext_pairs.setdefault((h, t), set()).add(r)
                joined.setdefault(h, set()).add(t)
                joined.setdefault(t, set()).add(h)
        self._ext_node: dict[int, int] = {}  # added catalog position -> its extension node
        self._ext_item: dict[int, int] = {}  # extension node -> the added catalog position it is
        for position in range(catalog.n_base, len(catalog)) if keys else ():
            added = catalog.added[position - catalog.n_base]
            if added.anchor is not None:
                continue
            node = extension.entities.get("\0" + added.item_id)
            if node is None and (own := extension.entities.get(added.item_id)) is not None:
                node = own if {tuple(link) for link in added.links} <= stored_edges.get(own, set()) else None
            if node is not None and node not in self._ext_item:
                self._ext_node[position], self._ext_item[node] = node, position
        self._ext_ids = [
            catalog.tokens[self._ext_item[v]] if v in self._ext_item else key.removeprefix("\0")
            for v, key in enumerate(keys, start=n)
        ]
        self._ext_names = [
            catalog.titles[self._ext_item[v]] if v in self._ext_item else self._ext_ids[v - n] for v in range(n, self._end)
        ]
        named = [v in self._ext_item or reads_as_a_name(self._ext_ids[v - n]) for v in range(n, self._end)]
        self._named = np.concatenate([self._named, np.asarray(named, dtype=bool)])
        # Neighbour lists of the nodes the extension joins: their stored ones and the new ones.
        self._ext_nbr = {
            v: np.union1d(self._nbr[self._indptr[v] : self._indptr[v + 1]] if v < n else [], sorted(others)).astype(np.int64)
            for v, others in joined.items()
        }
        self._degree = np.concatenate([self._degree, np.zeros(len(keys), dtype=self._degree.dtype)])
        for v, nbr in self._ext_nbr.items():
            self._degree[v] = len(nbr)

    def _index_attention(self, n: int, source: np.ndarray, target: np.ndarray, alpha: np.ndarray) -> None:
        """Attention per (target, source) node pair, summed over the relations joining them."""
        inside = (source < n) & (target < n)
        keys, pair = np.unique(target[inside].astype(np.int64) * n + source[inside], return_inverse=True)
        self._attention = (keys, np.bincount(pair, weights=alpha[inside], minlength=len(keys)))

    @property
    def has_attention(self) -> bool:
        """Whether shared neighbours are ordered by a KGAT encoder's attention."""
        return self._attention is not None

    def without_attention(self) -> Explainer:
        """This explainer with the default rule (readable, then least connected neighbours first)."""
        plain = copy.copy(self)
        plain._attention = None
        return plain

    def is_named(self, nodes: np.ndarray) -> np.ndarray:
        """Which graph nodes have a readable name (items, users, attribute values, entities whose
        id reads as a name), as explanations show them."""
        return self._named[np.asarray(nodes, dtype=np.int64)]

    def attention_into(self, node: int, senders: np.ndarray) -> np.ndarray:
        """How much ``node`` attends to each of ``senders`` (0 without an edge or without attention)."""
        if self._attention is None or self.kg is None or not len(self._attention[0]):
            return np.zeros(len(senders))
        keys, alpha = self._attention
        senders = np.asarray(senders, dtype=np.int64)
        wanted = node * self.kg.n_nodes + senders
        at = np.searchsorted(keys, wanted).clip(max=len(keys) - 1)
        return np.where((keys[at] == wanted) & (senders < self.kg.n_nodes), alpha[at], 0.0)  # none for new nodes

    def _path_attention(self, nodes: Sequence[int]) -> float | None:
        """For a 2-hop path ``a - c - b`` with attention: α(a ← c) · α(b ← c); else ``None``."""
        if self._attention is None or len(nodes) != 3 or max(nodes) >= self.kg.n_nodes:  # type: ignore[union-attr]
            return None
        a, c, b = nodes
        return float(self.attention_into(a, np.asarray([c]))[0] * self.attention_into(b, np.asarray([c]))[0])

    def _virtual_links(self, node: int) -> list[list[int]]:
        """Edges ``[relation, node, forward]`` of an added item's node numbered after the graph's
        and its extension's (an item that is no extension node)."""
        added = self.catalog.added_item(self.catalog.n_base + node - self._end)
        return added.links if added is not None else []

    def _neighbours(self, node: int) -> np.ndarray:
        """The content neighbours of ``node`` in the graph and its extension."""
        if node >= self._end:
            return np.unique(np.asarray([n for _, n, _ in self._virtual_links(node)], dtype=np.int64))
        if node in self._ext_nbr:
            return self._ext_nbr[node]
        if node >= self.kg.n_nodes:  # type: ignore[union-attr]
            return np.zeros(0, dtype=np.int64)  # an extension node no triple joins
        return self._nbr[self._indptr[node] : self._indptr[node + 1]]

    def _relations(self, h: int, t: int) -> list[int]:
        """The content relations of the triples ``h -> t`` in the graph and its extension."""
        n = self.kg.n_nodes  # type: ignore[union-attr]
        if h >= self._end:
            return sorted({r for r, node, fwd in self._virtual_links(h) if node == t and fwd})
        if t >= self._end:
            return sorted({r for r, node, fwd in self._virtual_links(t) if node == h and not fwd})
        found = set(self._ext_pairs.get((h, t), ()))
        if h < n and t < n:
            key = h * n + t
            lo, hi = np.searchsorted(self._pair_key, [key, key + 1])
            found.update(int(r) for r in self._pair_rel[lo:hi])
        return sorted(found)

    def _is_item(self, node: int) -> bool:
        if node >= self.kg.n_nodes:  # type: ignore[union-attr]
            return node >= self._end or node in self._ext_item
        return self.kg.node_type[node] == ITEM  # type: ignore[union-attr]

    def _hop(self, a: int, b: int) -> Hop:
        """The relations joining ``a`` and ``b`` in one direction (as :func:`find_paths` shows them:
        builder-generated inverses only when nothing else joins them; when both directions
        exist, the one leaving an item)."""
        kg = self.kg
        forward_all, backward_all = self._relations(a, b), self._relations(b, a)
        for generated in (False, True):
            forward = [r for r in forward_all if (kg.inverse_of[r] >= 0) == generated]
            backward = [r for r in backward_all if (kg.inverse_of[r] >= 0) == generated]
            if forward and backward and self._is_item(b) and not self._is_item(a):
                return Hop(a, b, tuple(backward), False)
            if forward:
                return Hop(a, b, tuple(forward), True)
            if backward:
                return Hop(a, b, tuple(backward), False)
        raise AssertionError(f"no edge between nodes {a} and {b}")  # pragma: no cover

    def node_of(self, position: int) -> int | None:
        """The graph node of a catalog position, or ``None``. An added item is its anchor node,
        else its node in the catalog's graph extension, else (when it has links) node
        ``end + position - n_base``, after the graph's and the extension's nodes."""
        if self.kg is None:
            return None
        if position < self.catalog.n_base:
            return position
        added = self.catalog.added_item(position)
        if added is None:
            return None
        if added.anchor is not None:
            return added.anchor
        if position in self._ext_node:
            return self._ext_node[position]
        return self._end + position - self.catalog.n_base if added.links else None

    def _node_paths(self, a: int, b: int, n: int) -> list[tuple[int, ...]]:
        """Up to ``n`` node sequences joining ``a`` and ``b`` within two hops: the direct edge,
        then shared neighbours (named ones first, then least connected)."""
        if self.kg is None or a == b or n <= 0:
            return []
        found: list[tuple[int, ...]] = []
        nbr_a, nbr_b = self._neighbours(a), self._neighbours(b)
        if b in nbr_a or a in nbr_b:
            found.append((a, b))
        common = np.intersect1d(nbr_a, nbr_b, assume_unique=True)
        common = common[(common != a) & (common != b) & ~self._removed(common)]
        if self._attention is not None and max(a, b) < self.kg.n_nodes:  # named first, then most attended to
            order = np.lexsort((-self.attention_into(a, common) * self.attention_into(b, common), ~self._named[common]))
        else:
            order = np.lexsort((self._degree[common], ~self._named[common]))  # named first, then least connected
        found += [(a, int(c), b) for c in common[order][: max(0, n - len(found))]]
        return found

    def _with_hops(self, nodes: tuple[int, ...]) -> GraphPath:
        return GraphPath(nodes, tuple(self._hop(x, y) for x, y in zip(nodes, nodes[1:], strict=False)))

    def paths_between(self, a: int, b: int, n: int, slow: bool = False) -> list[GraphPath]:
        """Up to ``n`` content paths between nodes ``a`` and ``b``: a direct edge, then shared
        neighbours (named ones first, then least connected), then (``slow``) :func:`find_paths`
        up to ``max_hops``."""
        if self.kg is None or a == b or n <= 0:
            return []
        found = [self._with_hops(nodes) for nodes in self._node_paths(a, b, n)]
        virtual = max(a, b) >= self.kg.n_nodes
        if not found and slow and self.max_hops > 2 and not virtual and self._within(a, b, self.max_hops):
            found = [
                p for p in find_paths(self.kg, a, b, n=n, max_hops=self.max_hops, exclude=self._excluded_names())
                if len(p) > 2 and not self._removed(np.asarray(p.nodes[1:-1])).any()
            ]
        return found[:n]

    def _excluded_names(self) -> list[str]:
        """The relations paths leave out (the users' ``interacted`` edges), by name."""
        return [str(self.kg.relation_names[r]) for r in sorted(self._excluded)] if self.kg is not None else []

    def prepare_paths(self) -> None:
        """Build what the slow path search reads (:func:`~kgrec.graph.prepare_paths`), so that the
        first explanation needing a path of three hops does not wait about half a second for it
        (:meth:`~kgrec.retrieval.Recommender.warm_up` calls it)."""
        if self.kg is not None and self.max_hops > 2:
            prepare_paths(self.kg, self._excluded_names())

    def _within(self, a: int, b: int, hops: int) -> bool:
        """Whether content edges join nodes ``a`` and ``b`` in at most ``hops`` steps: a
        breadth-first search from both ends, ``hops`` levels in all, the smaller frontier first.
        :func:`find_paths` runs only then: networkx spent 20-50 ms on ml-100k on each pair it could
        not join within ``max_hops`` (0.35 s for one ``similar`` of 10 results, 1 ms without)."""
        seen = [np.asarray([a]), np.asarray([b])]
        frontier = list(seen)
        for _ in range(hops):
            side = 0 if len(frontier[0]) <= len(frontier[1]) else 1
            reached = np.unique(np.concatenate([self._neighbours(v) for v in frontier[side]]))
            reached = np.setdiff1d(reached, seen[side], assume_unique=True)
            if np.intersect1d(reached, seen[1 - side], assume_unique=True).size:
                return True
            if not reached.size:  # one side's component is all seen, without the other end
                return False
            seen[side], frontier[side] = np.union1d(seen[side], reached), reached
        return False

    def _removed(self, nodes: np.ndarray) -> np.ndarray:
        """Which of ``nodes`` are items removed from the catalog (``kgrec remove-items``), trained
        ones or added ones the graph extension holds: a path through one would explain a result by
        an item the catalog no longer has."""
        base = self.catalog.n_base
        inside = nodes < base
        gone = np.zeros(len(nodes), dtype=bool)
        gone[inside] = ~self.catalog.active[nodes[inside]]
        for k in np.flatnonzero(nodes >= self.kg.n_nodes) if self._ext_item else ():  # type: ignore[union-attr]
            position = self._ext_item.get(int(nodes[k]))
            gone[k] = position is not None and not self.catalog.active[position]
        return gone

    def _all_named(self, nodes: Sequence[int]) -> bool:
        return all(v >= self._end or self._named[v] for v in nodes[1:-1])

    def _path(self, path: GraphPath, first: int, last: int, text: str, from_item: str | None) -> ExplanationPath:
        """``path`` between catalog positions ``first`` and ``last``, with its display names, raw
        ids and relation names."""
        kg, catalog = self.kg, self.catalog
        names, line = self._format(path, catalog.titles[first], catalog.titles[last])
        ids = [
            str(kg.keys[v]) if v < kg.n_nodes  # type: ignore[union-attr]
            else self._ext_ids[v - kg.n_nodes] if v < self._end  # type: ignore[union-attr]
            else catalog.tokens[catalog.n_base + v - self._end]
            for v in path.nodes
        ]
        ids[0], ids[-1] = catalog.tokens[first], catalog.tokens[last]  # an added item's anchor is not the item
        relations = tuple(tuple(str(kg.relation_names[r]) for r in hop.relations) for hop in path.hops)  # type: ignore[union-attr]
        return ExplanationPath(
            path, names, text or line, from_item, self._path_attention(path.nodes), tuple(ids), relations
        )

    def _format(self, path: GraphPath, first: str, last: str) -> tuple[tuple[str, ...], str]:
        kg = self.kg
        names = [
            str(kg.names[v]) if v < kg.n_nodes else self._ext_names[v - kg.n_nodes] if v < self._end else ""  # type: ignore[union-attr]
            for v in path.nodes
        ]
        names[0], names[-1] = first, last
        parts = [names[0]]
        labels = relation_labels(kg.relation_names)  # type: ignore[union-attr]
        for i, (hop, name) in enumerate(zip(path.hops, names[1:], strict=True), start=1):
            label = "|".join(labels[r] for r in hop.relations)
            parts.append(f"-{label}->" if hop.forward else f"<-{label}-")
            v = path.nodes[i]
            if i < len(path.nodes) - 1 and v < self._end and not self._named[v]:
                n = self._items_linked_to(v)  # how telling the link is
                name += f" (no name in the KG; {n} {'item links' if n == 1 else 'items link'} to it)"
            parts.append(name)
        return tuple(names), " ".join(parts)

    def _items_linked_to(self, node: int) -> int:
        """How many items of the catalog (active base items and added ones) have an edge to ``node``."""
        catalog, neighbours = self.catalog, self._neighbours(node)
        base = neighbours[neighbours < catalog.n_base]  # base items are nodes 0 .. n_base - 1
        count = int(catalog.active[base].sum())
        for position in range(catalog.n_base, len(catalog)):
            item_node = self.node_of(position) if catalog.active[position] else None
            if item_node is None:
                continue
            # anchored on an existing entity or an extension node: its edges; else its own recorded links
            if item_node < self._end:
                count += item_node in neighbours
            else:
                count += any(linked == node for _, linked, _ in self._virtual_links(item_node))
        return count

    # ------------------------------------------------------------------ attributes
    def _attribute_values(self, position: int) -> dict[str, set[str]]:
        """Comparable column values of an item: token and token_seq columns except the title
        and id-like ones."""
        catalog = self.catalog
        title = find_title_column(catalog.features)
        out: dict[str, set[str]] = {}
        for name, kind in catalog.feature_types.items():
            if name == title or name.endswith("_id") or kind not in ("token", "token_seq"):
                continue
            value = catalog.features[name][position]
            values = value if isinstance(value, list) else [value]
            kept = {str(v) for v in values if v not in (None, "")}
            if kept:
                out[name] = kept
        return out

    def shared_attributes(self, a: int, b: int) -> list[str]:
        """``"Genres: Comedy"``-style strings for the column values items ``a`` and ``b`` share."""
        va, vb = self._attribute_values(a), self._attribute_values(b)
        shared = []
        for name in va.keys() & vb.keys():
            common = sorted(va[name] & vb[name])
            if common:
                shared.append(f"{_label(name)}: {', '.join(common)}")
        return sorted(shared)

    # ------------------------------------------------------------------ explanations
    def for_user(self, history: Sequence[HistoryItem], target: int) -> Explanation:
        """Why ``target`` (a catalog position) is recommended to a user with this history (a
        result from the history itself, ``recommend --include-seen``, by the other items)."""
        catalog = self.catalog
        title = catalog.titles[target]
        history = [h for h in history if h.position != target]  # the result is no reason for itself
        if not history:
            return Explanation("model_score", f"{title}: among the model's highest scores for this user")
        rated = [h for h in history if h.rating is not None]
        liked = [h for h in rated if h.rating >= self.like_threshold] if rated else list(history)
        # none rated highly: their best-rated items, rather than a one-star film as the reason
        pool = liked or [h for h in rated if h.rating == max(r.rating for r in rated)] or list(history)
        positions = np.asarray([h.position for h in pool])
        closeness = self._unit[positions] @ self._unit[target]
        ranked = [pool[i] for i in np.argsort(-closeness, kind="stable")[: self.max_history]]
        target_node = self.node_of(target)
        # Candidates are node sequences ranked by (hops, unnamed middle nodes, history rank);
        # only the kept ones get their relations looked up.
        candidates: list[tuple[tuple[int, bool, int], HistoryItem, tuple[int, ...] | GraphPath]] = []
        if target_node is not None:
            for rank, h in enumerate(ranked):
                source = self.node_of(h.position)
                if source is not None:
                    for nodes in self._node_paths(source, target_node, self.max_paths):
                        candidates.append(((len(nodes) - 1, not self._all_named(nodes), rank), h, nodes))
            if not candidates:  # nothing within 2 hops: the slow search, for the closest pairs only
                for rank, h in enumerate(ranked[: self.slow_pairs]):
                    source = self.node_of(h.position)
                    if source is not None:
                        for path in self.paths_between(source, target_node, self.max_paths, slow=True):
                            candidates.append(((len(path), not self._all_named(path.nodes), rank), h, path))
        paths: list[ExplanationPath] = []
        kept = sorted(candidates, key=lambda c: c[0])[: self.max_paths]
        for _, h, found in kept:
            path = found if isinstance(found, GraphPath) else self._with_hops(found)
            names, line = self._format(path, catalog.titles[h.position], title)
            text = f"{_history_phrase(h, catalog, self.like_threshold)} {line[len(names[0]) + 1 :]}"
            paths.append(self._path(path, h.position, target, text, catalog.tokens[h.position]))
        if paths:
            related = tuple(dict.fromkeys(p.from_item for p in paths if p.from_item))
            co, said = self._co_liked_clause(kept[0][1].position, target)
            return Explanation("kg_path", paths[0].text + said, tuple(paths), related_items=related, co_liked=co)  # type: ignore[arg-type]
        for h in ranked:
            shared = self.shared_attributes(h.position, target)
            if shared:
                co, said = self._co_liked_clause(h.position, target)
                return Explanation(
                    "attributes",
                    f"shares {'; '.join(shared)} with {_history_clause(h, catalog, self.like_threshold)}{said}",
                    attributes=tuple(shared),
                    related_items=(catalog.tokens[h.position],),
                    co_liked=co,
                )
        names = ", ".join(catalog.titles[h.position] for h in ranked[:3])
        what = "you like" if ranked[0].liked else "you rated highly" if liked and rated else "you interacted with"
        co, said = self._co_liked_clause(ranked[0].position, target)
        return Explanation(
            "similar_items",
            f"close in the model's item space to items {what}: {names}{said}",
            related_items=tuple(catalog.tokens[h.position] for h in ranked[:3]),
            co_liked=co,
        )

    def for_similar(self, source: int, target: int, blended_score: float | None = None) -> Explanation:
        """Why ``target`` is similar to ``source`` (catalog positions). ``blended_score``: the
        score ``similar`` gave when it blended the model's cosine with the text's (an added
        item), which a closeness-only explanation then states."""
        catalog = self.catalog
        co, said = self._co_liked_clause(source, target)
        a, b = self.node_of(source), self.node_of(target)
        paths: list[ExplanationPath] = []
        if a is not None and b is not None:
            for path in self.paths_between(a, b, self.max_paths, slow=True):
                paths.append(self._path(path, source, target, "", catalog.tokens[source]))
        related = (catalog.tokens[source],)
        if paths:
            return Explanation("kg_path", paths[0].text + said, tuple(paths), related_items=related, co_liked=co)
        shared = self.shared_attributes(source, target)
        if shared:
            return Explanation(
                "attributes",
                f"shares {'; '.join(shared)} with {catalog.titles[source]}{said}",
                attributes=tuple(shared),
                related_items=related,
                co_liked=co,
            )
        if blended_score is not None:
            closeness = f"in the model's item space and by text (score {blended_score:.2f})"
        else:
            closeness = f"in the model's item space (cosine {float(self._unit[source] @ self._unit[target]):.2f})"
        return Explanation(
            "similar_items",
            f"close to {catalog.titles[source]} {closeness}{said}",
            related_items=related,
            co_liked=co,
        )

    def co_liked(self, source: int, target: int) -> tuple[int, int] | None:
        """(users who liked both, users who liked ``source``) in training; ``None`` without
        ``liked_by``, or when either item has no training likes (an added item, say)."""
        if self.liked_by is None or max(source, target) >= len(self.liked_by):
            return None
        a, b = self.liked_by[source], self.liked_by[target]
        if len(a) == 0 or len(b) == 0:
            return None
        return int(np.intersect1d(a, b, assume_unique=True).size), len(a)

    def _co_liked_clause(self, source: int, target: int) -> tuple[tuple[int, int] | None, str]:
        """:meth:`co_liked` and its words, ``"; liked by 38 of the 73 users who liked A"``
        (``""`` without counts, and when no user liked both: "liked by 0 of the 12 users" read as
        a reason for the result, which it is not; the counts stay in ``co_liked``)."""
        co = self.co_liked(source, target)
        if co is None or co[0] == 0:
            return co, ""
        verb = self.liked_verb
        return co, f"; {verb} by {co[0]} of the {co[1]} users who {verb} {self.catalog.titles[source]}"

    def for_text(self, query: str, target: int, score: float, scored_by: str = "text-encoder cosine") -> Explanation:
        """Why ``target`` matches the free-text ``query``; ``scored_by`` names ``score`` when no
        query word matches."""
        catalog = self.catalog
        words = [w for w in dict.fromkeys(text_words(query)) if without_accents(w) not in STOPWORDS and len(w) > 2]
        matched: list[str] = []
        title_words = set(text_words(catalog.titles[target]))
        for name, values in [("title", {catalog.titles[target]}), *self._attribute_values(target).items()]:
            for value in sorted(values):
                value_words = title_words if name == "title" else set(text_words(value))
                hits = [w for w in words if any(same_word(w, v) for v in value_words)]
                if hits:
                    label = "title" if name == "title" else _label(name)
                    matched.append(f"'{', '.join(hits)}' ~ {label}: {value}")
        if matched:
            return Explanation("text_match", "matches " + "; ".join(matched), attributes=tuple(matched))
        return Explanation("text_score", f"no query word in its title or columns; {scored_by} {score:.3f}")


def text_words(text: str) -> list[str]:
    """The words of ``text``, case-folded: runs of Unicode letters, digits and underscores
    (``"Nénette et Boni"`` -> ``["nénette", "et", "boni"]``), in order."""
    return _WORD.findall(unicodedata.normalize("NFC", text).casefold())


def same_word(a: str, b: str) -> bool:
    """Whether two case-folded words are the same word: equal without accents, or once a common
    English ending (:data:`SUFFIXES`) is taken off one or both: "films" ~ "film", "comedies" ~
    "comedy", "loved" ~ "love", "animated" ~ "animation"; not "animal" ~ "animation" nor
    "romantic" ~ "roman", which only begin alike."""
    a, b = without_accents(a), without_accents(b)
    return a == b or not _word_forms(a).isdisjoint(_word_forms(b))


def _word_forms(word: str) -> set[str]:
    """``word`` and the stems its ending may come off: an ending's "e" may belong to the stem
    ("loved" -> "love", "dancer" -> "dance"), an "ing" or "ion" may have taken one ("dancing" ->
    "dance", "animation" -> "animate"), "ies" ends a "y" word, a doubled last consonant is one
    ("starring" -> "star"); a final "s" after "s", "u" or "i" stays ("miss" is not "mis")."""
    forms = {word}
    for suffix, shortest in SUFFIXES:
        stem = word[: -len(suffix)]
        if not word.endswith(suffix) or len(stem) < shortest or suffix == "s" and word.endswith(_NOT_PLURAL):
            continue
        if suffix in _BEFORE and not stem.endswith(_BEFORE[suffix]):
            continue
        forms.add(stem)
        if suffix.startswith("e"):
            forms.add(stem + "e")
        if suffix in ("ing", "ion", "ions"):
            forms.add(stem + "e")
        if suffix == "ies":
            forms.add(stem + "y")
        if len(stem) > shortest and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
            forms.add(stem[:-1])
    return forms


def _label(column: str) -> str:
    return LABELS.get(column.lower(), column.replace("_", " ").capitalize())


def _history_phrase(h: HistoryItem, catalog: Catalog, threshold: float) -> str:
    title = catalog.titles[h.position]
    if h.liked:
        return f"you liked {title}"
    if h.rating is None:
        return f"you interacted with {title}"
    if h.rating >= threshold:
        return f"you rated {title} highly ({h.rating:g})"
    return f"you rated {title} ({h.rating:g})"


def _history_clause(h: HistoryItem, catalog: Catalog, threshold: float) -> str:
    title = catalog.titles[h.position]
    if h.liked:
        return f"{title}, which you liked"
    if h.rating is None:
        return f"{title}, which you interacted with"
    return f"{title}, which you rated {'highly ' if h.rating >= threshold else ''}({h.rating:g})"


def liked_users(
    user: np.ndarray, item: np.ndarray, rating: np.ndarray | None, n_items: int, like_threshold: float
) -> list[np.ndarray]:
    """Per item ``0 .. n_items - 1``, the sorted ids of the users who liked it: ``rating >=
    like_threshold``, or every interaction when there are no ratings (training interactions)."""
    keep = rating >= like_threshold if rating is not None else np.ones(len(user), dtype=bool)
    users, items = np.asarray(user)[keep], np.asarray(item)[keep]
    order = np.lexsort((users, items))
    users, items = users[order], items[order]
    bounds = np.searchsorted(items, np.arange(n_items + 1))
    return [np.unique(users[bounds[i] : bounds[i + 1]]) for i in range(n_items)]
