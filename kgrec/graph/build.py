"""Build a :class:`~kgrec.graph.KnowledgeGraph` from a dataset and a recipe.

The graph joins three sources of triples:

1. the dataset's KG triples (``NAME.kg``), where the entity linked to an item (``NAME.link``)
   becomes that item's node; items without a link are nodes of their own all the same;
2. item attribute columns turned into relations (``item -item.genre-> Comedy``);
3. optionally ``user -interacted-> item`` edges, from the **training split only**.

Everything is vectorised: triples are deduplicated by sorting packed int64 keys and
degrees are counted with ``np.bincount``; Python loops run per item or per relation, never per
triple.
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm  # terminal bars only (tqdm.auto warned in a Jupyter kernel without ipywidgets)

from kgrec.data.dataset import Dataset
from kgrec.errors import ConfigError
from kgrec.graph._arrays import sorted_unique
from kgrec.graph.kg import ENTITY, ITEM, USER, KnowledgeGraph
from kgrec.graph.recipe import (
    INTERACTED,
    INVERSE_SUFFIX,
    AttributeRelation,
    GraphRecipe,
    attribute_value,
    attribute_values,
    check_recipe,
    default_recipe,
    relation_allowed,
    value_text,
)
from kgrec.utils.io import source_records

STEPS = ("KG triples", "attributes", "deduplicate", "filter", "users", "finish")


@dataclass
class _Part:
    """Triples of one source, with provisional node ids. ``head`` is owned by the part (never a
    view of the dataset's arrays): deduplication packs its keys into that buffer."""

    head: np.ndarray
    relation: np.ndarray
    tail: np.ndarray


def build_graph(
    dataset: Dataset, recipe: GraphRecipe | None = None, progress: bool = False, notes: list[str] | None = None
) -> KnowledgeGraph:
    """Build the knowledge graph ``recipe`` describes from ``dataset``.

    Args:
        dataset: a loaded dataset (:func:`kgrec.data.load_dataset`).
        recipe: what to include; default :func:`~kgrec.graph.recipe.default_recipe` (the KG
            triples when the dataset has them, else its multi-valued item columns as
            relations), as training builds a graph without a recipe file. A library call
            reads no ``graphs/NAME.yaml``: give :func:`~kgrec.graph.load_recipe`'s.
        progress: show a progress bar over the build steps (on stderr).
        notes: when given, a line is appended to it for what the build did that a user may not
            expect: items that ``min_degree`` left without any edge.

    Returns:
        The graph, with nodes numbered items, then entities, then users (see :mod:`kgrec.graph.kg`).

    Raises:
        ConfigError: the recipe asks for something the dataset does not have (no ``.kg`` file,
            an attribute column that is missing or of an unusable type, an unknown column in
            ``item_name``, ``allow`` / ``deny`` patterns that leave no relation), or the graph
            would have no triples.
    """
    recipe = recipe or default_recipe(dataset)
    check_recipe(dataset, recipe)
    n_items = dataset.n_items
    with _steps(progress) as step:
        step("KG triples")
        # Provisional node ids: items [0, I), KG entities [I, I+E), attribute values after.
        kg_part, kg_relations = _kg_triples(dataset, recipe)
        n_kg_entities = 0 if dataset.entities is None else len(dataset.entities)

        step("attributes")
        offset = n_items + n_kg_entities
        parts, relation_names, value_names, value_keys = [kg_part], list(kg_relations), [], []
        for attribute in recipe.attributes:
            if not relation_allowed(attribute.relation, recipe):
                continue
            part, values = _attribute_triples(dataset, attribute, len(relation_names), offset)
            parts.append(part)
            relation_names.append(attribute.relation)
            value_names.extend(values)
            value_keys.extend(f"{attribute.relation}={v}" for v in values)
            offset += len(values)
        n_provisional = offset
        n_relations = max(len(relation_names), 1)
        _check_unique_names(dataset, kg_relations, recipe)
        names = relation_names + ([INTERACTED] if recipe.users else [])
        assert len(set(names)) == len(names), names  # attribute clashes: refused by check_recipe above

        step("deduplicate")
        n_kg, n_attributes = len(kg_part.head), sum(len(p.head) for p in parts[1:])
        head, relation, tail = _unique_triples(parts, n_provisional, n_relations)
        n_unique = len(head)
        del parts, kg_part

        step("filter")
        if recipe.min_degree > 1:
            dropped = _distinct_neighbours(head, tail, n_provisional) < recipe.min_degree
            dropped[:n_items] = False  # item nodes always stay
            keep = ~dropped[head]
            keep &= ~dropped[tail]
            linked_before = _linked_items(head, tail, n_items)
            had_triples = np.bincount(relation, minlength=n_relations) > 0
            present = np.zeros(n_provisional, dtype=bool)
            present[head] = present[tail] = True
            gone = int((dropped & present)[n_items:].sum())
            if gone and notes is not None:  # it dropped them without a word
                notes.append(
                    f"min_degree {recipe.min_degree} dropped {gone:,} of {int(present[n_items:].sum()):,} entities "
                    f"(fewer than {recipe.min_degree} distinct neighbours) and {int((~keep).sum()):,} of {len(keep):,} triples"
                )
            head, relation, tail = head[keep], relation[keep], tail[keep]
            isolated = int((linked_before & ~_linked_items(head, tail, n_items)).sum())
            if isolated and notes is not None:
                notes.append(
                    f"min_degree {recipe.min_degree} dropped every entity of {isolated} of {n_items} items "
                    f"({100 * isolated / n_items:.1f}%), which now have no edge in the graph; lower min_degree "
                    "to keep them linked"
                )
            emptied = np.flatnonzero(had_triples & (np.bincount(relation, minlength=n_relations) == 0))
            # user edges keep a graph whose content triples min_degree dropped: say so then too
            if len(emptied) and (len(head) or recipe.users) and notes is not None:
                notes.append(
                    f"min_degree {recipe.min_degree} dropped every triple of {len(emptied)} of {len(relation_names)} "
                    f"relations ({', '.join(relation_names[r] for r in emptied)}), which stay in the graph without "
                    "triples; lower min_degree, or deny them"
                )
        # Renumber: items keep their ids, the entities still in a triple follow in order.
        used = np.zeros(n_provisional, dtype=bool)
        used[head] = True
        used[tail] = True
        used[:n_items] = True
        new_id = np.cumsum(used, dtype=np.int64) - 1
        head = new_id[head]
        tail = new_id[tail]
        entity_rows = np.flatnonzero(used[n_items:])  # provisional entity ids - n_items, kept ones
        n_entities = len(entity_rows)
        kg_tokens = dataset.entities if dataset.entities is not None else np.zeros(0, dtype=object)
        entity_keys = np.concatenate([kg_tokens, np.asarray(value_keys, dtype=object)])[entity_rows]
        entity_names = np.concatenate([kg_tokens, np.asarray(value_names, dtype=object)])[entity_rows]
        del new_id, used

        step("users")
        user_keys = user_names = np.zeros(0, dtype=object)
        user_head = user_tail = np.zeros(0, dtype=np.int64)
        interacted = -1
        if recipe.users:
            train = dataset.train  # training split only: valid/test pairs never become edges
            pairs = sorted_unique(train.user.astype(np.int64) * n_items + train.item)
            user_head = n_items + n_entities + pairs // n_items
            user_tail = pairs % n_items
            interacted = len(relation_names)
            relation_names.append(INTERACTED)
            user_keys = dataset.users.astype(object)
            user_names = np.asarray([f"user {u}" for u in dataset.users], dtype=object)
        if recipe.makes_relations and len(head) + len(user_head) == 0:
            dropped_all = recipe.min_degree > 1 and n_unique > 0
            raise ConfigError(
                _no_triples(dataset, recipe, n_kg, n_attributes, n_unique), key="min_degree" if dropped_all else None
            )

        step("finish")
        n_base = len(relation_names)
        inverse_of = np.full(n_base, -1, dtype=np.int64)
        if recipe.inverse:
            relation_names += [name + INVERSE_SUFFIX for name in relation_names]
            inverse_of = np.concatenate([inverse_of, np.arange(n_base, dtype=np.int64)])
        triples = [head, relation, tail]
        del head, relation, tail  # _assemble frees them as it copies
        head, relation, tail = _assemble(triples, (user_head, interacted, user_tail), recipe.inverse, n_base)

        n_users = len(user_keys)
        node_type = np.repeat(np.array([ITEM, ENTITY, USER], dtype=np.int8), [n_items, n_entities, n_users])
        provenance = {
            "dataset": dataset.name,
            "dataset_path": str(dataset.path),
            "split": dataset.split,
            "sources": source_records(dataset.sources),
            "recipe": recipe.to_dict(),
            "recipe_sha256": recipe.sha256(),
        }
        return KnowledgeGraph(
            head=head,
            relation=relation,
            tail=tail,
            relation_names=np.asarray(relation_names, dtype=object),
            inverse_of=inverse_of,
            node_type=node_type,
            names=np.concatenate(
                [np.asarray(_item_names(dataset, recipe), dtype=object), entity_names, user_names]
            ),
            keys=np.concatenate([dataset.items.astype(object), entity_keys, user_keys]),
            n_items=n_items,
            provenance=provenance,
        )


def _linked_items(head: np.ndarray, tail: np.ndarray, n_items: int) -> np.ndarray:
    """``(n_items,)`` bool: whether each item is the head or tail of a triple."""
    linked = np.zeros(n_items, dtype=bool)
    linked[head[head < n_items]] = True
    linked[tail[tail < n_items]] = True
    return linked


def _no_triples(dataset: Dataset, recipe: GraphRecipe, n_kg: int, n_attributes: int, n_unique: int) -> str:
    """Why a recipe that asks for relations gave a graph without triples, source by source."""
    dropped = recipe.min_degree > 1 and n_unique > 0
    counts = []
    if recipe.kg:
        counts.append(f"{n_kg} KG triples" + (" after allow/deny" if recipe.allow or recipe.deny else ""))
    if recipe.attributes:
        counts.append(f"{n_attributes} from the attribute columns {', '.join(a.column for a in recipe.attributes)}")
    if dropped:
        counts.append(f"min_degree {recipe.min_degree} dropped all {n_unique}")
    if recipe.users:
        counts.append(f"{len(dataset.train)} training interactions")
    advice = "lower min_degree" if dropped else "check the recipe's kg, attributes, allow and deny"
    return (
        f"the recipe asks for relations but the graph built from '{dataset.name}' would have no triples "
        f"({'; '.join(counts)}); {advice}"
    )


def _check_unique_names(dataset: Dataset, kg_relations: list[str], recipe: GraphRecipe) -> None:
    """Refuse KG relations (those ``allow`` / ``deny`` keep) whose names the builder makes itself:
    ``interacted`` with ``users: true``, and names ending in ``.inv`` (generated inverses; the
    graph's readers take such a name for one). Attribute relations are checked with the recipe
    (:func:`~kgrec.graph.recipe.check_recipe`)."""
    if recipe.users and INTERACTED in kg_relations:
        raise ConfigError(
            f"the KG of '{dataset.name}' has a relation '{INTERACTED}', the name of the user edges users: true "
            f"adds; deny it (deny: ['{INTERACTED}'] drops the KG's relation, not the user edges), or set users: false",
            key="users",
        )
    reserved = [name for name in kg_relations if name.endswith(INVERSE_SUFFIX)]
    if reserved:
        shown = ", ".join(f"'{name}'" for name in reserved[:3]) + (f" and {len(reserved) - 3} more" if len(reserved) > 3 else "")
        raise ConfigError(
            f"the KG of '{dataset.name}' has relation{'s' if len(reserved) > 1 else ''} {shown} ending in "
            f"'{INVERSE_SUFFIX}', which names the inverses the builder generates; deny "
            f"{'them' if len(reserved) > 1 else 'it'} (deny: ['*{INVERSE_SUFFIX}']), or rename "
            f"{'them' if len(reserved) > 1 else 'it'} in {dataset.name}.kg",
            key="deny",
        )


# ---------------------------------------------------------------------------- sources of triples
def _kg_triples(dataset: Dataset, recipe: GraphRecipe) -> tuple[_Part, list[str]]:
    """KG triples with provisional node ids; linked entities become their items."""
    empty = np.zeros(0, dtype=np.int64)
    if not recipe.kg or dataset.kg is None or dataset.relations is None or dataset.entities is None:
        return _Part(empty, empty, empty), []
    kg = dataset.kg
    keep_relation = np.array([relation_allowed(str(r), recipe) for r in dataset.relations], dtype=bool)
    new_relation = np.cumsum(keep_relation) - 1
    names = [str(r) for r, keep in zip(dataset.relations, keep_relation, strict=True) if keep]
    if keep_relation.all():
        head, relation, tail = kg.head, kg.relation, kg.tail
    else:
        mask = keep_relation[kg.relation]
        head, relation, tail = kg.head[mask], new_relation[kg.relation[mask]], kg.tail[mask]

    n_items, n_entities = dataset.n_items, len(dataset.entities)
    node_of_entity = n_items + np.arange(n_entities, dtype=np.int64)
    item_entity = dataset.item_entity if dataset.item_entity is not None else np.full(n_items, -1)
    linked = np.flatnonzero(item_entity >= 0)
    links_per_entity = np.bincount(item_entity[linked], minlength=n_entities)
    if len(linked) == 0 or links_per_entity.max() <= 1:
        node_of_entity[item_entity[linked]] = linked
        return _Part(node_of_entity[head], relation.astype(np.int64, copy=False), node_of_entity[tail]), names
    # Several items share one entity: each triple of that entity is repeated for every item.
    order = np.argsort(item_entity[linked], kind="stable")
    items_by_entity = linked[order]
    start = np.cumsum(links_per_entity) - links_per_entity
    relation = relation.astype(np.int64)
    for end in ("head", "tail"):
        endpoint = head if end == "head" else tail
        copies = np.maximum(links_per_entity[endpoint], 1)
        rows = np.repeat(np.arange(len(endpoint)), copies)
        within = np.arange(len(rows)) - np.repeat(np.cumsum(copies) - copies, copies)
        ent = endpoint[rows]
        shared = links_per_entity[ent] > 0
        mapped = node_of_entity[ent]
        mapped[shared] = items_by_entity[start[ent[shared]] + within[shared]]
        head, relation, tail = head[rows], relation[rows], tail[rows]
        if end == "head":
            head = mapped
        else:
            tail = mapped
    return _Part(head, relation, tail), names


def _attribute_triples(
    dataset: Dataset, attribute: AttributeRelation, relation_id: int, offset: int
) -> tuple[_Part, list[str]]:
    """``item -relation-> value`` triples; value nodes get provisional ids from ``offset``."""
    items: list[int] = []
    values: list[str] = []
    for item, token in attribute_values(dataset, attribute.column):
        value = attribute_value(attribute, token)
        if value:
            items.append(item)
            values.append(value)
    # Not np.unique over a text array: its fixed width would give every value the longest one's bytes.
    distinct = sorted(set(values))
    index = {value: i for i, value in enumerate(distinct)}
    n = len(items)
    part = _Part(
        head=np.asarray(items, dtype=np.int64),
        relation=np.full(n, relation_id, dtype=np.int64),
        tail=offset + np.fromiter((index[v] for v in values), dtype=np.int64, count=n),
    )
    return part, distinct


def _item_names(dataset: Dataset, recipe: GraphRecipe) -> list[str]:
    default = dataset.item_names()
    if not recipe.item_name:
        return default
    fields = [f for _, f, _, _ in string.Formatter().parse(recipe.item_name) if f]
    columns = {f: dataset.item_features[f] for f in fields}
    names = []
    for i, fallback in enumerate(default):
        row = {}
        for fld, column in columns.items():
            value = column[i]
            row[fld] = " ".join(value) if isinstance(value, list) else value_text(value)
        names.append(recipe.item_name.format_map(row) if all(row.values()) else fallback)
    return names


# ---------------------------------------------------------------------------- vectorised kernels
def _unique_triples(
    parts: list[_Part], n_nodes: int, n_relations: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct triples of all parts, sorted by (head, relation, tail).

    Each triple is packed into one int64 key ``(head * R + relation) * N + tail``, built in the
    part's own ``head`` buffer (the parts are consumed), so 10M triples cost one extra array.
    """
    if n_nodes * n_nodes * n_relations >= 2**63:  # too many nodes to pack: sort the columns
        head, relation, tail = (
            np.concatenate([getattr(p, c) for p in parts]) for c in ("head", "relation", "tail")
        )
        order = np.lexsort((tail, relation, head))
        head, relation, tail = head[order], relation[order], tail[order]
        first = np.r_[
            True, (head[1:] != head[:-1]) | (relation[1:] != relation[:-1]) | (tail[1:] != tail[:-1])
        ]
        return head[first], relation[first], tail[first]
    keys = []
    for part in parts:
        key = part.head.astype(np.int64, copy=False)
        key *= n_relations
        key += part.relation
        key *= n_nodes
        key += part.tail
        part.head = part.relation = part.tail = None  # type: ignore[assignment]
        keys.append(key)
    key = keys[0] if len(keys) == 1 else np.concatenate(keys)
    del keys
    key = sorted_unique(key, in_place=True)
    tail = key % n_nodes
    key //= n_nodes
    relation = key % n_relations
    key //= n_relations
    return key, relation, tail


def _distinct_neighbours(head: np.ndarray, tail: np.ndarray, n_nodes: int) -> np.ndarray:
    """Number of distinct other nodes each node shares a triple with (either direction)."""
    pair = np.minimum(head, tail)
    high = np.maximum(head, tail)
    loop = pair == high
    pair *= n_nodes
    pair += high
    del high
    pair = sorted_unique(pair[~loop] if loop.any() else pair, in_place=True)
    degree = np.bincount(pair % n_nodes, minlength=n_nodes)
    pair //= n_nodes
    degree += np.bincount(pair, minlength=n_nodes)
    return degree


def _assemble(
    base: list[np.ndarray],
    users: tuple[np.ndarray, int, np.ndarray],
    inverse: bool,
    n_base: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The final triple arrays: base triples, user triples, then (if ``inverse``) all of them
    reversed with relation ``r + n_base``. Filled into preallocated arrays, freeing each input
    as soon as it is copied, to keep the peak memory low (``base``, [head, relation, tail], is
    emptied)."""
    head, relation, tail = base
    base.clear()
    user_head, user_relation, user_tail = users
    n_kg, n = len(head), len(head) + len(user_head)
    total = 2 * n if inverse else n

    out_relation = np.empty(total, dtype=np.int64)
    out_relation[:n_kg] = relation
    out_relation[n_kg:n] = user_relation
    del relation
    if inverse:
        np.add(out_relation[:n], n_base, out=out_relation[n:])

    def fill(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        out = np.empty(total, dtype=np.int64)
        out[:n_kg], out[n_kg:n] = first
        if inverse:
            out[n : n + n_kg], out[n + n_kg :] = second
        return out

    out_head = fill((head, user_head), (tail, user_tail))
    out_tail = fill((tail, user_tail), (head, user_head))
    return out_head, out_relation, out_tail


@contextlib.contextmanager
def _steps(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar over the build steps; ``step(label)`` starts the next one."""
    bar = tqdm(total=len(STEPS), desc="build graph", unit="step", disable=None if enabled else True, leave=False)  # a terminal only
    started = [False]

    def step(label: str) -> None:
        if started[0]:
            bar.update(1)
        started[0] = True
        bar.set_postfix_str(label)

    try:
        yield step
        bar.update(1)
    finally:
        bar.close()
