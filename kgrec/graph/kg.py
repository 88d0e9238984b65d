"""The built knowledge graph: typed nodes, named relations, triples; save/load and graph views.

Node numbering (the models rely on it):

* ``0 .. n_items-1`` are the dataset's items, in dataset index order (a linked item's KG entity
  is merged into its item node);
* ``n_items .. n_items+n_entities-1`` are the other entities (KG entities, then attribute values);
* ``user_offset + u`` is dataset user ``u``, when the graph has users.

On disk a graph is a folder holding ``manifest.json`` (format version, counts, provenance) and
``graph.npz`` (compact integer arrays and unicode name arrays; never pickled). The folder is
written atomically and checked when read.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.errors import GraphError
from kgrec.utils.io import (
    IMAGE_SUFFIXES,
    atomic_dir,
    file_above,
    named_folder,
    replace_refusal,
    restore_interrupted_dir,
    source_mismatch,
    write_json,
)
from kgrec.utils.names import TitleIndex, ambiguous_title, did_you_mean

if TYPE_CHECKING:
    import networkx as nx
    import torch
    from torch_geometric.data import Data

    from kgrec.data.dataset import Dataset

FORMAT = "kgrec-graph"
FORMAT_VERSION = 2  # 2: names as UTF-8 bytes and offsets (1, fixed-width text, is read too)
READ_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
ARRAYS = "graph.npz"
ITEM, ENTITY, USER = 0, 1, 2
NODE_TYPES = ("item", "entity", "user")
TEXT_ARRAYS = ("relation_names", *(f"{kind}_{field}" for kind in NODE_TYPES for field in ("names", "keys")))


@dataclass(eq=False)
class KnowledgeGraph:
    """A knowledge graph over items, entities and (optionally) users.

    Build one with :func:`kgrec.graph.build_graph`, read one with :meth:`load`.

    Attributes:
        head, relation, tail: the triples, ``(T,)`` int64 node and relation ids.
        relation_names: ``(R,)`` relation names (generated inverses end in ``.inv``).
        inverse_of: ``(R,)`` int64, the relation a generated inverse reverses, else ``-1``.
        node_type: ``(N,)`` int8, 0 item, 1 entity, 2 user.
        names: ``(N,)`` readable node names (item titles, attribute values, raw ids).
        keys: ``(N,)`` raw ids: the item id, the KG entity id, ``relation=value`` for attribute
            values, the user id.
        n_items: number of item nodes (the first ``n_items`` nodes).
        provenance: dataset name, split, source files with their sha256, recipe and its hash.
    """

    head: np.ndarray
    relation: np.ndarray
    tail: np.ndarray
    relation_names: np.ndarray
    inverse_of: np.ndarray
    node_type: np.ndarray
    names: np.ndarray
    keys: np.ndarray
    n_items: int
    provenance: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ counts
    @property
    def n_nodes(self) -> int:
        return len(self.node_type)

    @property
    def n_entities(self) -> int:
        """Non-item entities (KG entities and attribute values)."""
        return int(np.count_nonzero(self.node_type == ENTITY))

    @property
    def n_users(self) -> int:
        return int(np.count_nonzero(self.node_type == USER))

    @property
    def user_offset(self) -> int:
        """Node id of dataset user 0 (users are the last nodes)."""
        return self.n_items + self.n_entities

    @property
    def n_relations(self) -> int:
        return len(self.relation_names)

    @property
    def n_triples(self) -> int:
        return len(self.head)

    def counts(self) -> dict[str, int]:
        """Node, relation and triple counts, as stored in the manifest."""
        return {
            "nodes": self.n_nodes,
            "items": self.n_items,
            "entities": self.n_entities,
            "users": self.n_users,
            "relations": self.n_relations,
            "triples": self.n_triples,
        }

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return f"KnowledgeGraph({self.provenance.get('dataset', '?')}: {counts})"

    # ------------------------------------------------------------------ lookups
    def item_node(self, item_id: str) -> int:
        """Node id of the item with raw id ``item_id``, or of the one item with that title (an
        id wins; see :class:`~kgrec.utils.names.TitleIndex`).

        Raises:
            GraphError: no item has that id or title, or several have that title.
        """
        lookup = self._cache.get("items")
        if lookup is None:
            lookup = self._cache["items"] = {str(k): i for i, k in enumerate(self.keys[: self.n_items])}
        for key in (str(item_id), str(item_id).strip()):  # " 50" pasted from a table too, as the catalog reads it
            if key in lookup:
                return lookup[key]
        ids, titles = [str(k) for k in self.keys[: self.n_items]], [str(n) for n in self.names[: self.n_items]]
        found = TitleIndex(titles).lookup(str(item_id))
        if len(found) > 1:
            raise GraphError(ambiguous_title(str(item_id), ids, titles, found))
        if not found:
            examples = ", ".join(str(k) for k in self.keys[:3])
            raise GraphError(
                f"unknown item '{item_id}': not one of the {self.n_items} items of this graph "
                f"(raw item ids, e.g. {examples}){did_you_mean(str(item_id), ids, titles)}"
            )
        return found[0]

    def relation_id(self, name: str) -> int:
        """Id of the relation called ``name``; ``GraphError`` when there is none."""
        matches = np.flatnonzero(self.relation_names == name)
        if len(matches) == 0:
            raise GraphError(f"unknown relation '{name}'")
        return int(matches[0])

    # ------------------------------------------------------------------ views
    def edge_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``edge_index`` ``(2, T)`` (heads, tails) and ``edge_type`` ``(T,)`` as int64 tensors, what
        a graph network reads (without importing PyG, which takes seconds)."""
        import torch

        edge_index = torch.from_numpy(np.stack([self.head, self.tail]).astype(np.int64, copy=False))
        return edge_index, torch.from_numpy(self.relation.astype(np.int64, copy=False))

    def to_pyg(self) -> Data:
        """A ``torch_geometric.data.Data`` with ``edge_index`` (2, T), ``edge_type`` (T,),
        ``node_type`` (N,), ``num_nodes`` and ``num_relations``."""
        import torch
        from torch_geometric.data import Data

        edge_index, edge_type = self.edge_tensors()
        return Data(
            edge_index=edge_index,  # (2, T)
            edge_type=edge_type,  # (T,)
            node_type=torch.from_numpy(self.node_type.astype(np.int64)),  # (N,)
            num_nodes=self.n_nodes,
            num_relations=self.n_relations,
        )

    def to_networkx(self) -> nx.MultiDiGraph:
        """A ``networkx.MultiDiGraph``: nodes carry ``name`` and ``type`` (item/entity/user),
        edges carry ``relation`` (its name) and use the relation id as their key."""
        import networkx as nx

        graph = nx.MultiDiGraph()
        types = self.node_type.tolist()
        graph.add_nodes_from(
            (i, {"name": str(name), "type": NODE_TYPES[t]})
            for i, (name, t) in enumerate(zip(self.names, types, strict=True))
        )
        rel_names = [str(r) for r in self.relation_names]
        graph.add_edges_from(
            (h, t, r, {"relation": rel_names[r]})
            for h, r, t in zip(self.head.tolist(), self.relation.tolist(), self.tail.tolist(), strict=True)
        )
        return graph

    # ------------------------------------------------------------------ disk
    def manifest(self) -> dict[str, Any]:
        """What ``manifest.json`` holds."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "counts": self.counts(),
            "n_items": self.n_items,
            **self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        """Write the graph folder ``path`` (``manifest.json`` + ``graph.npz``) atomically, replacing
        an earlier graph there; ``GraphError`` when ``path`` holds anything else."""
        path = named_folder(path)
        arrays: dict[str, np.ndarray] = {
            "head": _compact(self.head),
            "relation": _compact(self.relation),
            "tail": _compact(self.tail),
            "inverse_of": self.inverse_of.astype(np.int32),
            "node_type": self.node_type.astype(np.int8),
            **_packed("relation_names", self.relation_names),
        }
        for code, kind in enumerate(NODE_TYPES):
            mask = self.node_type == code
            arrays |= _packed(f"{kind}_names", self.names[mask]) | _packed(f"{kind}_keys", self.keys[mask])

        def guard() -> None:
            if (above := file_above(path)) is not None:
                raise GraphError(f"{path}: {above} is a file, not a folder; give a new or empty folder, or an earlier graph's")
            is_graph = (path / ARRAYS).is_file()  # a plot beside a graph (``graph stats --plot``) goes with it

            def owned(entry: str) -> bool:
                return entry in (MANIFEST, ARRAYS) or (is_graph and Path(entry).suffix.lower() in IMAGE_SUFFIXES)

            if refusal := replace_refusal(path, owned, "the graph"):
                raise GraphError(f"{path}: {refusal}; give a new or empty folder, or an earlier graph's")

        with atomic_dir(path, guard) as tmp:
            assert all(a.dtype != object for a in arrays.values())  # loaded with allow_pickle=False
            np.savez(tmp / ARRAYS, **arrays)  # type: ignore[arg-type]
            write_json(tmp / MANIFEST, self.manifest())
        return path

    @classmethod
    def load(
        cls, path: str | Path, dataset: Dataset | None = None, check_sources: bool = True
    ) -> KnowledgeGraph:
        """Read a graph folder written by :meth:`save`.

        Args:
            path: the graph folder.
            dataset: if given, the graph must have been built from it: same dataset name and
                items in the same order and, if the graph has users, the same split.
            check_sources: with ``dataset``, also require its files to have the sha256 recorded
                at build time.

        Raises:
            GraphError: missing or corrupt files, an unknown format version, arrays that do not
                match the manifest's counts, or a graph built from another dataset.
        """
        path = Path(path)
        restore_interrupted_dir(path)  # a crash between save's two renames leaves it at .NAME.old
        manifest = _read_manifest(path)
        arrays = read_arrays(path / ARRAYS)
        if manifest["format_version"] >= 2:
            arrays |= {name: _unpacked(path / ARRAYS, arrays, name) for name in TEXT_ARRAYS}
        counts = manifest["counts"]
        _check_arrays(path, arrays, counts)
        names = np.concatenate([arrays[f"{kind}_names"].astype(object) for kind in NODE_TYPES])
        keys = np.concatenate([arrays[f"{kind}_keys"].astype(object) for kind in NODE_TYPES])
        provenance = {
            k: v for k, v in manifest.items() if k not in ("format", "format_version", "counts", "n_items")
        }
        graph = cls(
            head=arrays["head"].astype(np.int64),
            relation=arrays["relation"].astype(np.int64),
            tail=arrays["tail"].astype(np.int64),
            relation_names=arrays["relation_names"].astype(object),
            inverse_of=arrays["inverse_of"].astype(np.int64),
            node_type=arrays["node_type"].astype(np.int8),
            names=names,
            keys=keys,
            n_items=int(counts["items"]),
            provenance=provenance,
        )
        if dataset is not None:
            graph.check_dataset(dataset, check_sources=check_sources, where=path)
        return graph

    def check_dataset(
        self, dataset: Dataset, check_sources: bool = True, where: str | Path = "graph"
    ) -> None:
        """Raise :class:`GraphError` unless this graph was built from ``dataset``."""
        built_from = self.provenance.get("dataset")
        if built_from != dataset.name:
            raise GraphError(f"{where}: graph was built from dataset '{built_from}', not '{dataset.name}'")
        if dataset.n_items != self.n_items:
            raise GraphError(
                f"{where}: graph has {self.n_items} items, dataset '{dataset.name}' has {dataset.n_items}; rebuild the graph"
            )
        # Compared as Python strings: a fixed-width text array would give every id the longest one's bytes.
        differ = next((i for i, (a, b) in enumerate(zip(self.keys[: self.n_items], dataset.items, strict=True))
                       if str(a) != str(b)), None)  # fmt: skip
        if differ is not None:
            raise GraphError(
                f"{where}: item {differ} is '{self.keys[differ]}' in the graph but '{dataset.items[differ]}' in the "
                "dataset; rebuild the graph"
            )
        if self.n_users and [str(k) for k in self.keys[self.user_offset :]] != [str(u) for u in dataset.users]:
            raise GraphError(
                f"{where}: graph's users differ from the users of dataset '{dataset.name}'; rebuild the graph"
            )
        if self.n_users and self.provenance.get("split") != dataset.split:
            raise GraphError(
                f"{where}: graph's user edges come from split '{self.provenance.get('split')}', "
                f"the dataset is split '{dataset.split}'; rebuild the graph with the same split (kgrec graph build "
                "--split, --seed, --ratios and --cold-item-share, as data.*)"
            )
        if check_sources:
            mismatch = source_mismatch(self.provenance.get("sources", []), dataset.sources)
            if mismatch:
                raise GraphError(f"{where}: not the data of this graph: {mismatch}; rebuild it")


def _compact(values: np.ndarray) -> np.ndarray:
    """int32 when the values fit, else int64."""
    if len(values) == 0 or (values.min() >= 0 and values.max() < 2**31):
        return values.astype(np.int32)
    return values.astype(np.int64)


def _packed(name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """``values`` as the arrays ``NAME.utf8`` (their UTF-8 bytes, one after another) and
    ``NAME.offsets`` (``n + 1`` byte offsets): one long name costs its own bytes, where a
    fixed-width text array gave every name its width."""
    encoded = [str(v).encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return {f"{name}.utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8), f"{name}.offsets": offsets}


def _unpacked(file: Path, arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The names :func:`_packed` stored under ``name``, as an object array; a clear error for
    arrays that are missing or do not fit together."""
    data, offsets = arrays.get(f"{name}.utf8"), arrays.get(f"{name}.offsets")
    if data is None or offsets is None:
        raise GraphError(f"{file}: array '{name}' is missing")
    if data.dtype != np.uint8 or offsets.dtype.kind not in "iu" or offsets.ndim != 1 or not len(offsets) or offsets[0] != 0 \
            or offsets[-1] != len(data) or (np.diff(offsets.astype(np.int64)) < 0).any():  # fmt: skip
        raise GraphError(f"{file}: array '{name}': its bytes and offsets do not fit together")
    raw = data.tobytes()
    try:
        return np.array([raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)], dtype=object)
    except UnicodeDecodeError as error:
        raise GraphError(f"{file}: array '{name}' is not UTF-8 ({error.reason})") from None


def built_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe a graph folder was built from, as its manifest records it (``{}`` where the
    manifest holds none); the manifest is checked as :meth:`KnowledgeGraph.load` checks it, the
    arrays are not read."""
    path = Path(path)
    restore_interrupted_dir(path)
    recipe = _read_manifest(path).get("recipe")
    return dict(recipe) if isinstance(recipe, dict) else {}


def _read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if path.is_file():
        graph = f" ({path.parent} is a graph)" if (path.parent / MANIFEST).is_file() else ""
        raise GraphError(f"{path}: a file, not a graph folder{graph}")
    if not path.is_dir():
        raise GraphError(f"{path}: graph folder not found (build one with `kgrec graph build`)")
    if not file.is_file():
        raise GraphError(f"{file}: manifest not found: not a graph folder")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise GraphError(f"{file}: manifest is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise GraphError(f"{file}: not a kgrec graph manifest (expected format '{FORMAT}')")
    version = manifest.get("format_version")
    if type(version) is int and version > max(READ_VERSIONS):  # written by a newer kgrec: rebuilding is not the fix
        raise GraphError(
            f"{file}: graph format version {version}, newer than this kgrec "
            f"reads (versions {' and '.join(map(str, READ_VERSIONS))}); upgrade kgrec to read it, or rebuild the graph "
            "with this one"
        )
    if type(version) is not int or version not in READ_VERSIONS:  # not true, which == 1
        raise GraphError(
            f"{file}: graph format version {version}, this kgrec reads versions {' and '.join(map(str, READ_VERSIONS))}; "
            "rebuild the graph"
        )
    counts = manifest.get("counts")
    wanted = ("nodes", "items", "entities", "users", "relations", "triples")
    if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int) for k in wanted):
        raise GraphError(f"{file}: manifest 'counts' must give integer {', '.join(wanted)}")
    return manifest


def read_arrays(file: Path, what: str = "graph arrays", names: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file kgrec wrote (no pickles), holding at least ``names``; a
    :class:`GraphError` naming the file and ``what`` it holds when it is missing, damaged (cut
    short, not an ``.npz``) or lacks one of them."""
    if not file.is_file():
        raise GraphError(f"{file}: {what} not found")
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # one .npy array: no context manager, no names
            raise GraphError(f"{file}: cannot read {what} (a single .npy array, not an .npz archive)")
        with loaded as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:  # BadZipFile: a file cut short
        raise GraphError(f"{file}: cannot read {what} ({error})") from None
    missing = [name for name in names if name not in arrays]
    if missing:
        raise GraphError(f"{file}: cannot read {what} (no array {', '.join(missing)})")
    return arrays


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], counts: dict[str, int]) -> None:
    where = path / ARRAYS
    per_type = {"item": counts["items"], "entity": counts["entities"], "user": counts["users"]}
    expected = {
        "head": counts["triples"],
        "relation": counts["triples"],
        "tail": counts["triples"],
        "relation_names": counts["relations"],
        "inverse_of": counts["relations"],
        "node_type": counts["nodes"],
    }
    for kind, n in per_type.items():
        expected[f"{kind}_names"] = n
        expected[f"{kind}_keys"] = n
    for name, n in expected.items():
        if name not in arrays:
            raise GraphError(f"{where}: array '{name}' is missing")
        if arrays[name].ndim != 1 or len(arrays[name]) != n:
            raise GraphError(
                f"{where}: array '{name}' has shape {arrays[name].shape}, manifest counts say ({n},)"
            )
    if sum(per_type.values()) != counts["nodes"]:
        raise GraphError(f"{where}: items + entities + users != nodes in the manifest counts")
    node_type = arrays["node_type"]
    for name in ("node_type", "inverse_of"):  # read with astype: text or floats would fail there, or be truncated
        if arrays[name].dtype.kind not in "iu":
            raise GraphError(f"{where}: array '{name}' has dtype {arrays[name].dtype}, expected integers")
    inverse_of = arrays["inverse_of"]
    if len(inverse_of) and (inverse_of.min() < -1 or inverse_of.max() >= counts["relations"]):
        raise GraphError(f"{where}: array 'inverse_of' has ids outside [-1, {counts['relations']})")
    layout = np.repeat(
        np.arange(3, dtype=node_type.dtype), [per_type["item"], per_type["entity"], per_type["user"]]
    )
    if not np.array_equal(node_type, layout):
        raise GraphError(f"{where}: node types are not laid out as items, then entities, then users")
    for name, bound in (
        ("head", counts["nodes"]),
        ("tail", counts["nodes"]),
        ("relation", counts["relations"]),
    ):
        values = arrays[name]
        if values.dtype.kind not in "iu":
            raise GraphError(f"{where}: array '{name}' has dtype {values.dtype}, expected integers")
        if len(values) and (values.min() < 0 or values.max() >= bound):
            raise GraphError(f"{where}: array '{name}' has ids outside [0, {bound})")
