r"""Cold-start items: vectors for items that have no interactions, without retraining.

A new item has no trained ID embedding, so its retrieval vector comes from the model's
inductive pathways only (:meth:`~kgrec.models.MultiTaskRecommender.cold_item_vectors`):

.. math::
    \mathbf{x}_{new} = \mathrm{RetrievalTower}_{item}\Big(\mathrm{Trunk}_{item}\big(
        \mathrm{fuse}(\varnothing,\ \mathrm{adapt}(\mathbf{t}_{new}),\ \mathbf{g}_{new})\big)\Big)

* **text** :math:`\mathbf{t}_{new}`: the item's row (new ``.item`` file) written with the run's
  text template and encoded by the run's text encoder; the trained MoE adaptor maps it.
* **graph** :math:`\mathbf{g}_{new}`: the run's graph is extended and re-encoded with
  :meth:`~kgrec.models.MultiTaskRecommender.encode_graph`. Each new item is a node: the KG
  entity it is linked to (``.link``) when that entity is already a node (the graph builder merges
  a linked item into its entity), else a new node numbered after the existing ones, which
  starts from a zero embedding and takes its vector from its neighbours. Its edges are the
  recipe's attribute relations (``item.genre -> Comedy`` ... to attribute values the graph
  already has) and the triples of the new ``.kg`` file (relations the model was trained on;
  unknown entities become new nodes, unknown relations are skipped and counted). Generated
  inverse relations are added when the graph has them. A triple is added once, and not when
  the graph has it already (as the graph builder keeps each triple once). The nodes and edges
  that earlier ``add-items`` brought are kept in the catalog
  (:class:`~kgrec.retrieval.catalog.GraphExtension`) and are part of the graph a later batch
  extends: a new entity that two batches name is one node, and a new item may be linked to an
  entity that only an earlier batch's triples name. Items added earlier keep their vectors.

The fusion gate renormalises over the modalities present, so an item with text only, or with
graph links only, still gets a vector; an item with neither (no text pathway, and no existing
node within the graph encoder's layers of its own) is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from kgrec.data.atomic import AtomicTable, TokenColumn, csv_header_hint, read_atomic
from kgrec.data.dataset import Dataset, Interactions
from kgrec.errors import DataError, RetrievalError
from kgrec.graph.kg import ENTITY, KnowledgeGraph
from kgrec.retrieval.catalog import AddedItem, Catalog, GraphExtension, _column_values
from kgrec.utils.names import some_names

if TYPE_CHECKING:
    from kgrec.train.saved import LoadedRun

#: The inductive pathways that embed a new item (:func:`embed_new_items`'s ``use``).
PATHWAYS = ("text", "graph")


@dataclass
class NewItems:
    """New items read from atomic files (``.item`` required, ``.link`` and ``.kg`` optional)."""

    path: Path
    tokens: list[str]
    columns: dict[str, Any]  # row-aligned columns as read (TokenColumn, float array, lists)
    column_types: dict[str, str]
    links: dict[str, str] = field(default_factory=dict)  # item token -> entity token
    triples: list[tuple[str, str, str]] = field(default_factory=list)  # (head, relation, tail) tokens
    self_linked: list[str] = field(default_factory=list)  # items without a link that the triples name: linked to themselves

    def __len__(self) -> int:
        return len(self.tokens)

    def as_dataset(self, name: str) -> Dataset:
        """A dataset holding only these items (no users, no interactions), for text templates."""
        empty = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64))
        features = {
            k: (v.values() if isinstance(v, TokenColumn) else v) for k, v in self.columns.items()
        }
        return Dataset(
            name=name, path=self.path.parent, users=np.zeros(0, dtype=object),
            items=np.asarray(self.tokens, dtype=object), train=empty, valid=empty, test=empty, split="new items",
            item_features=features, item_feature_types=dict(self.column_types),
        )  # fmt: skip


def read_new_items(items: str | Path, link: str | Path | None = None, kg: str | Path | None = None) -> NewItems:
    """Read and validate the new items' atomic files.

    Raises:
        DataError: a missing ``item_id`` column, an empty id, a repeated item, a link to an item that is not
            in the ``.item`` file or a second entity for one item, malformed files (file:line).
    """
    table = _read_item_file(Path(items))
    if table.n_rows == 0:
        raise DataError("no items: the file has a header but no rows", table.path, line=1)
    tokens = [str(t) for t in table.tokens("item_id")]
    seen: dict[str, int] = {}
    for row, token in enumerate(tokens):
        if token in seen:
            raise DataError(
                f"'{token}' appears again (first on line {table.line(seen[token])}); expected one row per item",
                table.path, table.line(row), "item_id:token",
            )  # fmt: skip
        seen[token] = row
    columns = {k: v for k, v in table.columns.items() if k != "item_id"}
    types = {k: v for k, v in table.types.items() if k != "item_id"}
    out = NewItems(Path(items), tokens, columns, types)
    if link is not None:
        lt = read_atomic(link)
        lt.require_ids("item_id", "entity_id")  # as the dataset loader reads a .link: no empty id
        for row, (item, entity) in enumerate(zip(lt.tokens("item_id"), lt.tokens("entity_id"), strict=True)):
            item, entity = str(item), str(entity)
            if item not in seen:
                raise DataError(f"item '{item}' is not in {Path(items).name}", lt.path, lt.line(row), "item_id:token")
            if out.links.get(item, entity) != entity:
                raise DataError(
                    f"item '{item}' is linked to a second entity; expected one entity per item",
                    lt.path, lt.line(row), "entity_id:token",
                )  # fmt: skip
            out.links[item] = entity
    if kg is not None:
        kt = read_atomic(kg)
        kt.require_ids("head_id", "relation_id", "tail_id")
        out.triples = [
            (str(h), str(r), str(t))
            for h, r, t in zip(kt.tokens("head_id"), kt.tokens("relation_id"), kt.tokens("tail_id"), strict=True)
        ]
        # Triples written in the new items' own ids (as `kgrec data import --kg` without --links
        # reads them): an item without a link is the entity of its id. Its triples had made a
        # node of their own, which no item was linked to, so the graph pathway missed them.
        named = {h for h, _, _ in out.triples} | {t for _, _, t in out.triples}
        out.self_linked = [item for item in tokens if item not in out.links and item in named]
        out.links.update((item, item) for item in out.self_linked)
    return out


#: What ``add-items`` reads, to end a message about a new-items file it cannot read.
ITEM_FILE = (
    "add-items reads an atomic .item file: tab-separated, unquoted, a header of name:type entries "
    "(item_id:token<TAB>title:token ...), the id column named item_id"
)


def _read_item_file(path: Path) -> AtomicTable:
    """:func:`read_atomic` of a new-items file, with an ``item_id`` column; a CSV file, a header
    the reader refuses, or no ``item_id`` column is refused with what :data:`ITEM_FILE` says
    (and, for a CSV file, the atomic header its columns would need)."""
    if path.is_file():
        with open(path, "rb") as handle:
            header = handle.readline().decode("utf-8-sig", errors="replace")
        if hint := csv_header_hint(header, id_column="item_id"):
            separator = "commas" if "," in header else "semicolons"
            raise DataError(
                f"this looks like a CSV file ({separator}, no tab, in its header '{header.strip()}'); {ITEM_FILE}. "
                f"For these columns write the header '{hint}' (\\t: a tab) and separate every line's fields "
                "with tabs; token_seq is a space-separated list, float a number",
                path,
                line=1,
            )
    try:
        table = read_atomic(path)
    except DataError as error:
        if error.path != path or error.line != 1:
            raise
        raise DataError(f"{error.message}; {ITEM_FILE}", path, 1, error.column) from None
    if "item_id" not in table.types:
        ids = [f"{name}:{kind}" for name, kind in table.types.items() if name == "id" or name.endswith("_id")]
        rename = f" (rename {ids[0]} to item_id:token)" if ids else ""
        raise DataError(f"missing required column 'item_id'{rename} (header has: {table.header()}); {ITEM_FILE}", path, 1)
    table.require_ids("item_id")  # an empty id names no item (the dataset loader refuses it too)
    return table


@dataclass
class Embedded:
    """Vectors of new items and how they were made.

    Attributes:
        vectors: ``(m, d)`` retrieval-space vectors.
        items: catalog records (title, columns, pathways, graph anchor).
        encoded: ``(m, t)`` the text encoder's vectors of their text (what ``search``
            compares), whichever pathways made ``vectors``; ``None`` when the run has no text
            (or, without the text pathway, the file lacks a column the template reads).
        new_edges: edges added to the graph for them.
        skipped_triples: ``.kg`` triples whose relation the model was not trained on.
        graph_extension: the catalog's graph extension with what they brought (``None``:
            the run has no graph).
        fused: ``(m, f)`` the model's fused vectors :math:`\\mathbf{h}_{new}` (before the trunk),
            which the rating and like towers score them by
            (:meth:`~kgrec.models.MultiTaskRecommender.predict_cold`).
    """

    vectors: np.ndarray
    items: list[AddedItem]
    encoded: np.ndarray | None = None
    new_edges: int = 0
    skipped_triples: int = 0
    graph_extension: GraphExtension | None = None
    fused: np.ndarray | None = None


def template_columns(run: LoadedRun) -> tuple[str, list[str]]:
    """The run's text template (its config's, else the dataset's default) and the item columns
    it reads, ``item_id`` aside: what every item added through the text pathway must have."""
    from kgrec.text import default_template, template_fields

    template = run.config.text.template or default_template(run.dataset)
    fields = template_fields(template, [*run.dataset.item_features, "item_id"])
    return template, [f for f in fields if f != "item_id"]


def embed_new_items(
    run: LoadedRun, new: NewItems, catalog: Catalog, use: tuple[str, ...] = PATHWAYS, progress: bool = False
) -> Embedded:
    """Retrieval vectors (and fused vectors) for ``new`` items through the model's text and
    graph pathways; a run without the retrieval tower gets zero-width retrieval vectors.

    Args:
        run: the loaded run (model, dataset, graph, config).
        new: items from :func:`read_new_items`.
        catalog: the current catalog (new tokens must not be in it).
        use: the pathways to use (both by default; one of them for ablations).
        progress: show the text-encoding progress bar.

    Raises:
        DataError: a value of another kind than the catalog's column holds (file:line, before
            any text is encoded).
        RetrievalError: an item already in the catalog, a model without text and graph
            pathways, an item that gets neither text nor graph information, a text encoder of
            another size than the model's.
    """
    model = run.model
    for token in new.tokens:
        if state := catalog.taken(token):
            raise RetrievalError(f"new item '{token}' {state}")
    use_text = model.config.use_text and "text" in use
    use_graph = model.config.use_graph and "graph" in use and run.graph is not None
    if not use_text and not use_graph:
        raise RetrievalError(
            "this model has no inductive pathway for new items (model.use_text and model.use_graph are off, "
            f"or not in {list(use)}); train with model.use_text=true or model.use_graph=true"
        )
    values = {name: _column_values(column, new.column_types[name]) for name, column in new.columns.items()}  # once
    features = [{name: column[j] for name, column in values.items()} for j in range(len(new))]
    types, clash = catalog.column_types(features)
    if clash is not None:  # before any text is encoded
        row, name, value = clash
        line = _read_item_file(new.path).line(row)
        raise DataError(catalog.misfit(name, value, types), new.path, line, f"{name}:{new.column_types[name]}")
    mini = new.as_dataset(run.dataset.name)
    titles = _titles(mini, run.graph)
    # The text encoder's vectors of every new item when the run has text, whatever the pathways:
    # search compares them; ``use`` only decides whether the retrieval vector reads them.
    encoded = _encode_text(run, new, mini, required=use_text, progress=progress) if model.config.use_text else None
    text = encoded if use_text else None

    anchors: list[int | None] = [None] * len(new)
    item_links: list[list[list[int]]] = [[] for _ in new.tokens]
    graph_rows: list[int] = []
    new_edges = skipped = 0
    graph_vectors = None
    extension = None
    if run.graph is not None:
        encoder = model.graph_encoder
        reach = (encoder.num_layers, encoder.add_inverse) if encoder is not None else (0, True)
        grown = _extend_graph(run.graph, run.dataset, new, catalog, *reach)
        anchors, item_links, extension = grown.anchors, grown.links, grown.extension
        new_edges, skipped = grown.new_edges, grown.skipped
        if use_graph:
            graph_rows = [j for j in range(len(new)) if grown.informed[j]]
            if graph_rows:
                edges = torch.as_tensor(grown.edges)
                with torch.no_grad():
                    nodes = model.encode_graph(
                        torch.cat([model.edge_index, edges[:2]], dim=1),
                        torch.cat([model.edge_type, edges[2]]),
                        num_new_nodes=len(extension.entities),
                    )  # (N + n_new, d)
                graph_vectors = nodes[[grown.nodes[j] for j in graph_rows]]

    fused = torch.zeros(len(new), model.config.dim, dtype=next(model.parameters()).dtype)
    via: list[tuple[str, ...]] = [()] * len(new)
    with torch.no_grad():
        rows = graph_rows
        if rows:
            t = text[rows] if text is not None else None
            fused[rows] = model.fuse_cold_items(t, graph_vectors)
            for j in rows:
                via[j] = ("text", "graph") if text is not None else ("graph",)
        in_graph = set(rows)
        rest = [j for j in range(len(new)) if j not in in_graph]
        if rest:
            if text is None:
                raise RetrievalError(_unembedded(new, [new.tokens[j] for j in rest], model.config.use_text))
            fused[rest] = model.fuse_cold_items(text[rest], None)
            for j in rest:
                via[j] = ("text",)
        # a run without the retrieval tower has zero-width vectors: its added items are scored by predict alone
        vectors = model.fused_item_vectors(fused) if catalog.dim else torch.zeros(len(new), 0)
    items = [
        AddedItem(
            item_id=token,
            title=titles[j],
            features=features[j],
            via=via[j],
            anchor=anchors[j],
            links=item_links[j],
            source=str(new.path),
        )
        for j, token in enumerate(new.tokens)
    ]
    searchable = encoded.numpy().astype(np.float32) if encoded is not None else None
    return Embedded(vectors.numpy().astype(np.float32), items, searchable, new_edges, skipped, extension,
                    fused.numpy().astype(np.float32))  # fmt: skip


def _unembedded(new: NewItems, tokens: list[str], has_text: bool) -> str:
    """Why items that got no graph information cannot be embedded without the text pathway: a
    link to an entity that nothing in the graph or the triples names (it was said to be no link
    at all, though ``--link`` gave one), or no link."""
    why = "the text pathway is not asked for (--pathways)" if has_text else "the model has no text pathway"
    dangling = [t for t in tokens if t in new.links]
    if dangling:
        one = len(dangling) == 1
        entities = ", ".join(repr(new.links[t]) for t in dangling[:5]) + (" ..." if len(dangling) > 5 else "")
        return (f"new item{'' if one else 's'} {some_names(dangling, 5)} {'is' if one else 'are'} linked to {entities}, "
                f"which {'is' if one else 'are'} neither an entity of the run's graph nor joined to one by a KG triple of a "
                f"relation the graph has (a typo in an entity id?), and {why}: nothing to embed {'it' if one else 'them'} from")  # fmt: skip
    one = len(tokens) == 1
    return (f"new item{'' if one else 's'} {some_names(tokens, 5)} {'has' if one else 'have'} no link to the graph and "
            f"{why}: nothing to embed {'it' if one else 'them'} from (link {'it' if one else 'them'} to graph entities: "
            '--link FILE, or "links" over HTTP)')  # fmt: skip


def _encode_text(run: LoadedRun, new: NewItems, mini: Dataset, required: bool, progress: bool) -> torch.Tensor | None:
    """``(m, t)``: the new items' rows written with the run's text template and encoded by its
    text encoder. Items whose file lacks a column the template reads are refused when the text
    pathway is ``required``, else get no text vectors (``None``: search does not find them).

    Raises:
        DataError: a column the template needs is missing and the text pathway is asked for.
        RetrievalError: the text encoder gives vectors of another size than the model reads.
    """
    from kgrec.text import encode_items, item_texts

    template, needed = template_columns(run)
    config = replace(run.config.text, template=template)
    missing = [c for c in needed if c not in new.columns]
    if missing and not required:
        return None
    if missing:
        raise DataError(
            f"the run's text template {config.template!r} needs column(s) {', '.join(missing)}; the file has "
            f"{', '.join(new.columns) or 'only item_id'} (add them, or add the items through the graph pathway "
            'alone: --pathways graph; "pathways": ["graph"] over HTTP)',
            new.path,
            line=1,
        )
    text = encode_items(item_texts(mini, config), config, progress=progress)  # (m, t)
    if text.shape[1] != run.model.sizes.text_dim:
        raise RetrievalError(
            f"text vectors of size {text.shape[1]}, the model reads {run.model.sizes.text_dim}: "
            f"the run's text model ({config.model}) changed"
        )
    return text


ATTRIBUTE_NOTE_ITEMS = 10  # a linked entity that this many trained items point to reads as an attribute


def graph_notes(
    graph: KnowledgeGraph, dataset: Dataset, new: NewItems, extension: GraphExtension | None = None
) -> list[str]:
    """What adding ``new`` to a run of ``dataset`` does with its links and triples that the user
    may not expect (links resolved as :func:`embed_new_items` resolves them, ``extension``
    holding what earlier batches added): KG relations the graph lacks (left out), linked
    entities nothing names (their links connect to nothing), linked entities that many trained
    items point to (an attribute such as a genre or a rating, whose node the new item would
    become)."""
    notes = []
    if new.self_linked:
        shown = ", ".join(new.self_linked[:5]) + (" ..." if len(new.self_linked) > 5 else "")
        notes.append(f"{len(new.self_linked)} new item{'s' if len(new.self_linked) > 1 else ''} without a link "
                     f"({shown}) {'are' if len(new.self_linked) > 1 else 'is'} the KG entity of {'their' if len(new.self_linked) > 1 else 'its'} "
                     "own id, which the new triples name")  # fmt: skip
    known = set(map(str, graph.relation_names))
    relations = sorted({r for _, r, _ in new.triples if r not in known})
    if relations:
        notes.append(
            f"KG triples of relation{'s' if len(relations) > 1 else ''} {', '.join(relations[:5])}"
            f"{' ...' if len(relations) > 5 else ''} were left out: the model was trained on the run's graph's "
            "relations only (`kgrec graph stats GRAPH` lists them)"
        )
    kept = [(h, t) for h, r, t in new.triples if r in known]
    node_of = {str(key): n for n, key in enumerate(graph.keys)} | _entity_nodes(graph, dataset)
    named = set(node_of) | {h for h, _ in kept} | {t for _, t in kept}
    if extension is not None:  # entities an earlier batch joined to something
        joined = {h for h, _, _ in extension.triples} | {t for _, _, t in extension.triples}
        named |= {entity for entity, node in extension.entities.items() if node in joined}
    unknown = sorted({entity for entity in new.links.values() if entity not in named})
    if unknown:
        one = len(unknown) == 1
        notes.append(
            f"{len(unknown)} linked entit{'y' if one else 'ies'} ({', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}) "
            f"{'is' if one else 'are'} neither in the run's graph nor in the new KG triples, so those links connect their items to "
            "nothing (a typo in an entity id?)"
        )
    linked = {item: node_of[e] for item, e in new.links.items() if node_of.get(e, -1) >= graph.n_items}
    items_of = _trained_items_per_node(graph, np.fromiter(set(linked.values()), np.int64)) if linked else {}
    for item, node in linked.items():
        if items_of.get(node, 0) >= ATTRIBUTE_NOTE_ITEMS:
            notes.append(
                f"new item '{item}' is linked to entity '{new.links[item]}' ({graph.names[node]}), which {items_of[node]} of the "
                "run's items point to: the item takes that node's place and its neighbours; if it is an attribute "
                "(a genre, a rating) rather than the item itself, link the item to an entity of its own and give "
                "the attribute as a KG triple"
            )
    return notes


def empty_row_notes(new: NewItems) -> list[str]:
    """New items whose row has no value in any column (an empty title, year, genres ...): they are
    titled by their raw id, and their text, which ``search`` compares with queries, is that id
    alone, a text so short that it ranks high for unrelated queries."""
    values = [_column_values(column, new.column_types[name]) for name, column in new.columns.items()]
    empty = [token for j, token in enumerate(new.tokens) if not any(_has_value(column[j]) for column in values)]
    if not empty:
        return []
    one = len(empty) == 1
    it = "it" if one else "them"
    return [f"{len(empty)} new item{'' if one else 's'} ({some_names(empty)}) {'has' if one else 'have'} no value in any "
            f"column of {new.path.name}: {'its' if one else 'their'} title and the text that searches compare are "
            f"{'its' if one else 'their'} id alone, which may rank high for unrelated words; to title {it}, remove {it} "
            f"(kgrec remove-items) and add {it} again, titled, under {'a new id' if one else 'new ids'}"]  # fmt: skip


def _has_value(value: Any) -> bool:
    """Whether a cell read from an atomic file holds something: not ``""``, NaN, ``None`` or ``[]``."""
    if isinstance(value, float):
        return not np.isnan(value)
    if isinstance(value, (list, np.ndarray)):
        return len(value) > 0
    return value not in (None, "")


def _trained_items_per_node(graph: KnowledgeGraph, nodes: np.ndarray) -> dict[int, int]:
    """How many distinct item nodes each of ``nodes`` shares an edge with, either way, in one pass
    over the triples."""
    into = (graph.head < graph.n_items) & np.isin(graph.tail, nodes)  # item -> node
    out_of = (graph.tail < graph.n_items) & np.isin(graph.head, nodes)  # node -> item
    pairs = np.concatenate([np.stack([graph.tail[into], graph.head[into]], 1),
                            np.stack([graph.head[out_of], graph.tail[out_of]], 1)])  # fmt: skip
    node, count = np.unique(np.unique(pairs, axis=0)[:, 0], return_counts=True)
    return dict(zip(node.tolist(), count.tolist(), strict=True))


def pathway_notes(items: Sequence[AddedItem], asked: Sequence[str]) -> list[str]:
    """Items embedded without the graph pathway although it was asked for and the model has
    it: nothing linked them to the run's graph (no link, no KG triple, no attribute value the
    graph has; a value spelt otherwise than the catalog's, ``Science_Fiction`` for ``Sci-Fi``)."""
    alone = [item.item_id for item in items if "graph" in asked and "graph" not in item.via]
    if not alone:
        return []
    return [f"{len(alone)} new item{'s' if len(alone) > 1 else ''} ({some_names(alone)}) got the text pathway alone: "
            "nothing links them to the run's graph (no link to a graph entity, no KG triple, no attribute value the "
            "graph has); their similar items and explanations come from text only"]  # fmt: skip


def _titles(items: Dataset, kg: KnowledgeGraph | None) -> list[str]:
    """Display names: the graph recipe's ``item_name`` template (as the run's own items get),
    else the title column, else the raw id."""
    import string

    from kgrec.graph.recipe import value_text

    fallback = items.item_names()
    template = (kg.provenance.get("recipe") or {}).get("item_name") if kg is not None else None
    if not template:
        return fallback
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    if any(f not in items.item_features for f in fields):
        return fallback
    columns = {f: _column_values(items.item_features[f], items.item_feature_types[f]) for f in fields}
    out = []
    for j, default in enumerate(fallback):
        row = {f: " ".join(v[j]) if isinstance(v[j], list) else ("" if v[j] is None else value_text(v[j])) for f, v in columns.items()}
        out.append(template.format_map(row) if all(row.values()) else default)
    return out


def _entity_nodes(kg: KnowledgeGraph, dataset: Dataset) -> dict[str, int]:
    """Raw KG entity token (or attribute key ``relation=value``) -> node id."""
    entity_rows = np.flatnonzero(kg.node_type == ENTITY)
    lookup = {str(kg.keys[i]): int(i) for i in entity_rows}
    if dataset.item_entity is not None and dataset.entities is not None:
        for item in np.flatnonzero(dataset.item_entity >= 0):
            lookup[str(dataset.entities[dataset.item_entity[item]])] = int(item)
    return lookup


@dataclass
class _Grown:
    """The run's graph extended for new items (:func:`_extend_graph`).

    Attributes:
        anchors: each new item's stored graph node, or ``None`` (a new node).
        nodes: each new item's node in the extended graph.
        informed: whether each item's node gets graph information.
        links: each new-node item's edges to stored nodes ``[relation, node, forward]``.
        edges: ``(3, E)`` int64 ``[head; tail; relation]``, every edge the extension holds
            (earlier batches' too), generated inverses included: what the encoder adds.
        new_edges: how many of them this batch added.
        skipped: triples of relations the model was not trained on.
        extension: the catalog's extension with this batch's nodes and triples.
    """

    anchors: list[int | None]
    nodes: list[int]
    informed: list[bool]
    links: list[list[list[int]]]
    edges: np.ndarray
    new_edges: int
    skipped: int
    extension: GraphExtension


def _extend_graph(
    kg: KnowledgeGraph, dataset: Dataset, new: NewItems, catalog: Catalog, hops: int = 2, both_ways: bool = True
) -> _Grown:
    """Nodes and edges for the new items (see the module docstring), on top of what earlier
    batches added (``catalog.graph_extension``). Each triple is added once, and not when the
    graph or the extension already has it, as the graph builder keeps each triple once (a
    repeated edge weighs twice in the encoder's mean). A new node has graph information when a
    stored node reaches it within the encoder's ``hops`` layers (messages flow head -> tail, and
    back too when ``both_ways``): else its vector comes from zeros alone, one constant vector for
    every such item.

    Raises:
        RetrievalError: an item linked to the entity of an active trained item, or an
            extension made on another graph.
    """
    from kgrec.graph.recipe import (
        attribute_value,  # the builder's own value rules
        recipe_from_dict,
    )

    earlier = catalog.graph_extension
    if earlier and earlier.first_node != kg.n_nodes:
        raise RetrievalError(
            f"the catalog's graph extension starts at node {earlier.first_node}, the run's graph has {kg.n_nodes} "
            "nodes (the graph was rebuilt?); remove RUN_DIR/catalog and add the items again"
        )
    nodes = _entity_nodes(kg, dataset)
    entities = dict(earlier.entities)  # new node keys, earlier batches' first
    next_node = kg.n_nodes + len(entities)

    def node_of(key: str) -> int:
        nonlocal next_node
        if key not in entities:
            entities[key] = next_node
            next_node += 1
        return entities[key]

    anchors: list[int | None] = []
    for token in new.tokens:
        entity = new.links.get(token)
        node = nodes.get(entity) if entity is not None else None
        if node is not None and node < kg.n_items and catalog.active[node]:
            raise RetrievalError(
                f"new item '{token}' is linked to entity '{entity}', which is already item "
                f"'{catalog.tokens[node]}' of this run; link it to another entity or remove that item first"
            )
        anchors.append(node if node is not None else node_of(entity if entity is not None else f"\0{token}"))
    existing = [a is not None and a < kg.n_nodes for a in anchors]
    entity_of_new = {new.links[t]: anchors[j] for j, t in enumerate(new.tokens) if t in new.links}
    graph_nodes: list[int] = list(anchors)  # type: ignore[arg-type]

    relation_id = {str(name): i for i, name in enumerate(kg.relation_names)}
    inverse = {int(base): i for i, base in enumerate(kg.inverse_of) if base >= 0}
    originals: list[tuple[int, int, int]] = []
    recipe = recipe_from_dict(kg.provenance["recipe"]) if isinstance(kg.provenance.get("recipe"), dict) else None
    for attribute in recipe.attributes if recipe is not None else []:
        if attribute.column not in new.columns or attribute.relation not in relation_id:
            continue
        values = _column_values(new.columns[attribute.column], new.column_types[attribute.column])
        for j, raw in enumerate(values):
            for value in raw if isinstance(raw, list) else [raw]:
                if value is None:
                    continue
                node = nodes.get(f"{attribute.relation}={attribute_value(attribute, value)}")
                if node is not None:
                    originals.append((graph_nodes[j], relation_id[attribute.relation], node))
    skipped = 0
    for h, r, t in new.triples:
        if r not in relation_id:
            skipped += 1
            continue
        head = entity_of_new.get(h, nodes.get(h))
        tail = entity_of_new.get(t, nodes.get(t))
        originals.append((head if head is not None else node_of(h), relation_id[r], tail if tail is not None else node_of(t)))
    had = set(earlier.triples)
    originals = [t for t in _not_in_graph(kg, list(dict.fromkeys(originals))) if t not in had]
    triples = [*earlier.triples, *originals]

    heads: list[int] = []
    tails: list[int] = []
    rels: list[int] = []
    for h, r, t in triples:
        heads.append(h)
        rels.append(r)
        tails.append(t)
        if r in inverse:
            heads.append(t)
            rels.append(inverse[r])
            tails.append(h)
    edges = np.asarray([heads, tails, rels], dtype=np.int64).reshape(3, -1)
    reached = _reached(kg.n_nodes, heads, tails, hops, both_ways)
    informed = [existing[j] or graph_nodes[j] in reached for j in range(len(new.tokens))]
    # Edges of new item nodes to stored nodes, kept for explanations: [relation, node, forward].
    links: dict[int, list[list[int]]] = {}
    for h, r, t in triples:
        if h >= kg.n_nodes and t < kg.n_nodes:
            links.setdefault(h, []).append([r, t, 1])
        elif t >= kg.n_nodes and h < kg.n_nodes:
            links.setdefault(t, []).append([r, h, 0])
    extension = GraphExtension(kg.n_nodes, entities, tuple(triples))
    return _Grown(
        anchors=[a if existing[j] else None for j, a in enumerate(anchors)],
        nodes=graph_nodes,
        informed=informed,
        links=[[] if existing[j] else links.get(graph_nodes[j], []) for j in range(len(new.tokens))],
        edges=edges,
        new_edges=sum(2 if r in inverse else 1 for _, r, _ in originals),
        skipped=skipped,
        extension=extension,
    )


def _not_in_graph(kg: KnowledgeGraph, triples: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """``triples`` ``(head, relation, tail)`` less those the graph already has (a link to an
    existing entity whose triples the new ``.kg`` repeats, the attribute edges of a removed
    item's node)."""
    old = [k for k, (h, _, t) in enumerate(triples) if h < kg.n_nodes and t < kg.n_nodes]
    if not old:
        return triples
    a = np.asarray([triples[k] for k in old], dtype=np.int64)  # (n, 3)
    n, r = kg.n_nodes, max(kg.n_relations, 1)
    graph = (kg.head.astype(np.int64) * r + kg.relation) * n + kg.tail
    there = {old[k] for k in np.flatnonzero(np.isin((a[:, 0] * r + a[:, 1]) * n + a[:, 2], graph))}
    return [triple for k, triple in enumerate(triples) if k not in there]


def _reached(n_old: int, heads: list[int], tails: list[int], hops: int, both_ways: bool) -> set[int]:
    """The new nodes (``>= n_old``) that a message from an existing node reaches within ``hops``
    steps over the new edges ``heads -> tails`` (and back when ``both_ways``)."""
    senders: dict[int, list[int]] = {}
    for h, t in zip(heads, tails, strict=True):
        senders.setdefault(t, []).append(h)
        if both_ways:
            senders.setdefault(h, []).append(t)
    reached: set[int] = set()
    for _ in range(hops):
        step = {v for v, us in senders.items() if v >= n_old and any(u < n_old or u in reached for u in us)}
        if step <= reached:
            break
        reached |= step
    return reached
