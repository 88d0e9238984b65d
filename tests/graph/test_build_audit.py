"""The graph builder, as a helper's audit checked it: the triple set recomputed independently
from the atomic files (random small datasets, and ml-100k), user edges from the training split
only, numbering independent of hash randomisation, and the refusals and notes the audit fixed
(those tests failed before their fix)."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kgrec.data import SplitConfig, load_dataset
from kgrec.errors import ConfigError
from kgrec.graph import KnowledgeGraph, build_graph, load_recipe, recipe_from_dict
from tests.conftest import write_atomic

ROOT = Path(__file__).resolve().parents[2]
KIND = {0: "i", 1: "e", 2: "u"}  # nodes as (kind, raw id): an entity may share its id with an item


def typed_triples(kg: KnowledgeGraph) -> list[tuple]:
    nodes = [(KIND[int(t)], str(k)) for t, k in zip(kg.node_type.tolist(), kg.keys, strict=True)]
    rels = [str(r) for r in kg.relation_names]
    return [(nodes[h], rels[r], nodes[t]) for h, r, t in zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist(), strict=True)]


def _rows(folder: Path, ext: str) -> list[dict[str, str]]:
    """An atomic file's rows, read with plain string splitting (no kgrec code)."""
    file = folder / f"{folder.name}.{ext}"
    if not file.exists():
        return []
    lines = file.read_text(encoding="utf-8").splitlines()
    columns = [h.split(":")[0] for h in lines[0].split("\t")]
    return [dict(zip(columns, line.split("\t"), strict=True)) for line in lines[1:] if line.strip()]


def expected_triples(folder: Path, recipe: dict, train: set[tuple[str, str]]) -> set[tuple]:
    """The graph ``recipe`` promises, computed from the files: a linked entity is each of its
    items, attribute values are ``relation=value`` nodes, min_degree counts distinct other nodes
    over the content triples (items stay), users from ``train`` only, inverses reversed."""
    allow, deny = recipe.get("allow", []), recipe.get("deny", [])

    def kept(r: str) -> bool:
        return (not allow or any(fnmatch.fnmatchcase(r, p) for p in allow)) and not any(fnmatch.fnmatchcase(r, p) for p in deny)

    items_of: dict[str, list] = {}
    for row in _rows(folder, "link"):
        items_of.setdefault(row["entity_id"], []).append(("i", row["item_id"]))
    out = set()
    for row in _rows(folder, "kg"):
        if kept(row["relation_id"]):
            for h in items_of.get(row["head_id"], [("e", row["head_id"])]):
                for t in items_of.get(row["tail_id"], [("e", row["tail_id"])]):
                    out.add((h, row["relation_id"], t))
    for attribute in recipe.get("attributes", []):
        relation = attribute["relation"]
        if kept(relation):
            for row in _rows(folder, "item"):
                out |= {(("i", row["item_id"]), relation, ("e", f"{relation}={v}")) for v in row[attribute["column"]].split(" ") if v.strip()}
    if recipe.get("min_degree", 0) > 1:
        neighbours: dict[tuple, set] = {}
        for h, _, t in out:
            if h != t:
                neighbours.setdefault(h, set()).add(t)
                neighbours.setdefault(t, set()).add(h)
        def stays(node: tuple) -> bool:  # a self-loop makes no neighbour
            return node[0] == "i" or len(neighbours.get(node, ())) >= recipe["min_degree"]

        out = {(h, r, t) for h, r, t in out if stays(h) and stays(t)}
    if recipe.get("users"):
        out |= {(("u", u), "interacted", ("i", i)) for u, i in train}
    if recipe.get("inverse"):
        out |= {(t, r + ".inv", h) for h, r, t in out}
    return out


def _random_dataset(tmp: Path, seed: int) -> tuple[Path, dict]:
    """A small random dataset: entities shared by items, linked to nothing in the KG, named like
    items; self-loops; duplicate triples; empty and colliding attribute values; a given split."""
    rnd = random.Random(seed)
    items = [f"i{k}" for k in range(rnd.randint(2, 7))]
    entities = [f"e{k}" for k in range(rnd.randint(2, 10))] + items[:2]
    relations = [rnd.choice(["film.film.a", "film.b", "x.y.z", "plain"]) + str(k) for k in range(rnd.randint(1, 4))]
    kg = [(rnd.choice(entities), rnd.choice(relations), rnd.choice(entities)) for _ in range(rnd.randint(1, 20))]
    link = {i: rnd.choice(entities + ["nowhere"]) for i in items if rnd.random() < 0.7}
    link[items[0]] = kg[0][0]  # at least one link into the KG
    genres = ["A", "B", "i1", "e1"]
    item_rows = [f"{i}|{' '.join(rnd.sample(genres, rnd.randint(0, 3)))}|{rnd.choice(['x', 'y', ' ', 'i0'])}" for i in items]
    users = ["u0", "u1", "u2"]
    pairs = [f"{rnd.choice(users)}|{rnd.choice(items)}" for _ in range(10)]
    header = "user_id:token|item_id:token\n"
    folder = write_atomic(tmp, f"rnd{seed}", {
        "kg": "head_id:token|relation_id:token|tail_id:token\n" + "\n".join("|".join(t) for t in kg),
        "link": "item_id:token|entity_id:token\n" + "\n".join(f"{i}|{e}" for i, e in link.items()),
        "item": "item_id:token|g:token_seq|c:token\n" + "\n".join(item_rows),
        "train.inter": header + "\n".join(pairs[:5]), "valid.inter": header + "\n".join(pairs[5:7]),
        "test.inter": header + "\n".join(pairs[7:]),
    })  # fmt: skip
    recipe = {"inverse": rnd.random() < 0.5, "users": rnd.random() < 0.5, "min_degree": rnd.choice([0, 2, 3])}
    recipe["attributes"] = [a for a in ({"column": "g", "relation": "item.g"}, {"column": "c", "relation": "item.c"}) if rnd.random() < 0.6]
    if rnd.random() < 0.3:
        recipe["allow"] = [rnd.choice(["film.*", "*.a*", "item.*", "x.y.*"])]
    if rnd.random() < 0.3:
        recipe["deny"] = [rnd.choice(["film.film.*", "*0", "item.c"])]
    return folder, recipe


def test_every_triple_is_one_the_atomic_files_justify_and_none_is_missing(tmp_path):
    built = 0
    for seed in range(60):
        folder, recipe = _random_dataset(tmp_path, seed)
        dataset = load_dataset(folder)
        try:
            kg = build_graph(dataset, recipe_from_dict(recipe))
        except ConfigError:  # filters or min_degree that leave nothing: refused, as documented
            continue
        built += 1
        train = {(str(dataset.users[u]), str(dataset.items[i])) for u, i in zip(dataset.train.user, dataset.train.item, strict=True)}
        got = typed_triples(kg)
        assert len(got) == len(set(got)), f"seed {seed}: duplicate triples"
        assert set(got) == expected_triples(folder, recipe, train), f"seed {seed}: {recipe}"
        assert list(kg.keys[: kg.n_items]) == list(dataset.items)
        degree = np.bincount(np.r_[kg.head, kg.tail], minlength=kg.n_nodes)
        assert (degree[kg.node_type == 1] > 0).all()  # every entity node is in a triple
    assert built >= 30


@pytest.mark.parametrize("strategy", ["ratio", "temporal", "global_temporal", "cold_item"])
def test_user_edges_are_the_training_pairs_exactly_for_every_split(atomic, strategy):
    inter = "user_id:token|item_id:token|timestamp:float\n" + "\n".join(
        f"u{u}|i{i}|{u * 10 + i}" for u in range(6) for i in range(8) if (u + i) % 3
    )
    dataset = load_dataset(atomic(name="s", inter=inter), split=SplitConfig(strategy=strategy, ratios=(0.5, 0.25, 0.25), cold_item_share=0.3))
    kg = build_graph(dataset, recipe_from_dict({"kg": False, "users": True, "inverse": True}))
    forward = kg.relation == kg.relation_id("interacted")
    edges = set(zip((kg.head[forward] - kg.user_offset).tolist(), kg.tail[forward].tolist(), strict=True))
    held_out = {(u, i) for part in (dataset.valid, dataset.test) for u, i in zip(part.user.tolist(), part.item.tolist(), strict=True)}
    assert edges == set(zip(dataset.train.user.tolist(), dataset.train.item.tolist(), strict=True))
    assert held_out - edges == held_out and held_out  # no valid/test pair is an edge
    assert kg.n_users == dataset.n_users  # users without training pairs are nodes without edges


def test_min_degree_counts_each_distinct_neighbour_once(atomic):
    folder = atomic(
        inter="user_id:token|item_id:token\nu|i1\nu|i2",
        kg="head_id:token|relation_id:token|tail_id:token\ne1|r|x\ne1|s|x\nx|r|e1\ny|r|y\ne2|r|y\ne1|r|z\ne2|r|z",
        link="item_id:token|entity_id:token\ni1|e1\ni2|e2",
    )  # x: i1 three times; y: i2 and itself; z: i1 and i2
    kg = build_graph(load_dataset(folder), recipe_from_dict({"min_degree": 2}))
    assert {(h[1], r, t[1]) for h, r, t in typed_triples(kg)} == {("i1", "r", "z"), ("i2", "r", "z")}


def test_numbering_does_not_depend_on_hash_randomisation(toy_dataset, tmp_path):
    script = (
        "import sys; from kgrec.data import load_dataset; from kgrec.graph import build_graph, recipe_from_dict\n"
        "r = {'users': True, 'inverse': True, 'attributes': [{'column': 'class', 'relation': 'item.genre'}]}\n"
        "build_graph(load_dataset(sys.argv[1]), recipe_from_dict(r)).save(sys.argv[2])\n"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(toy_dataset), str(tmp_path / seed)], env=env, check=True, cwd=ROOT)
    with np.load(tmp_path / "1" / "graph.npz") as one, np.load(tmp_path / "2" / "graph.npz") as two:
        assert sorted(one.files) == sorted(two.files)
        assert all(np.array_equal(one[name], two[name]) for name in one.files)


def test_saved_graph_reloads_identically(toy, tmp_path):
    kg = build_graph(toy, recipe_from_dict({"users": True, "inverse": True, "attributes": [{"column": "class", "relation": "item.genre"}]}))
    back = KnowledgeGraph.load(kg.save(tmp_path / "g"), dataset=toy)
    for name in ("head", "relation", "tail", "relation_names", "inverse_of", "node_type", "names", "keys"):
        assert np.array_equal(getattr(kg, name), getattr(back, name)), name
    assert back.provenance == kg.provenance and back.n_items == kg.n_items


@pytest.mark.network
def test_ml100k_graph_matches_a_computation_from_the_raw_files(ml100k):
    recipe = load_recipe(ROOT / "graphs" / "ml-100k.yaml")
    dataset = load_dataset(ml100k)
    kg = build_graph(dataset, recipe_from_dict({**recipe.to_dict(), "users": True, "inverse": True, "min_degree": 2}))
    decade = set()
    for row in _rows(ml100k, "item"):
        with contextlib.suppress(ValueError):  # no year
            decade.add((("i", row["item_id"]), "item.decade", ("e", f"item.decade={int(float(row['release_year'])) // 10 * 10}s")))
    train = {(str(dataset.users[u]), str(dataset.items[i])) for u, i in zip(dataset.train.user, dataset.train.item, strict=True)}
    content = expected_triples(ml100k, {"attributes": [{"column": "class", "relation": "item.genre"}]}, set()) | decade
    assert len(content) == 96204  # the shipped graph's triples
    neighbours: dict[tuple, set] = {}
    for h, _, t in content:
        if h != t:
            neighbours.setdefault(h, set()).add(t)
            neighbours.setdefault(t, set()).add(h)
    kept = {x for x in content if all(n[0] == "i" or len(neighbours[n]) >= 2 for n in (x[0], x[2]))}
    full = kept | {(("u", u), "interacted", ("i", i)) for u, i in train}
    full |= {(t, r + ".inv", h) for h, r, t in full}
    got = typed_triples(kg)
    assert len(got) == len(full) == 295628 and set(got) == full


# ----------------------------------------------------------------------------- fixed by the audit
def test_kg_relation_named_interacted_with_users_is_refused_with_a_fix_that_works(atomic):
    folder = atomic(
        inter="user_id:token|item_id:token\nu|i1",
        kg="head_id:token|relation_id:token|tail_id:token\ne1|interacted|x\ne1|r|y",
        link="item_id:token|entity_id:token\ni1|e1",
    )
    dataset = load_dataset(folder)
    with pytest.raises(ConfigError, match=r"^the KG of 'toy' has a relation 'interacted', the name of the user edges users: "
                       r"true adds; deny it \(deny: \['interacted'\] drops the KG's relation, not the user edges\), or "
                       r"set users: false$") as error:  # fmt: skip
        build_graph(dataset, recipe_from_dict({"users": True}))  # before: "... rename the attribute", of no attribute
    assert error.value.key == "users"
    kg = build_graph(dataset, recipe_from_dict({"users": True, "deny": ["interacted"]}))  # the advice works
    assert {(h[1], r, t[1]) for h, r, t in typed_triples(kg)} == {("i1", "r", "y"), ("u", "interacted", "i1")}


def test_kg_relation_ending_in_inv_is_refused_naming_the_deny_that_builds(atomic):
    folder = atomic(
        inter="user_id:token|item_id:token\nu|i1",
        kg="head_id:token|relation_id:token|tail_id:token\ne1|r|x\nx|r.inv|e1\nx|s.inv|e1",
        link="item_id:token|entity_id:token\ni1|e1",
    )
    dataset = load_dataset(folder)
    for inverse in (False, True):
        with pytest.raises(ConfigError, match=r"^the KG of 'toy' has relations 'r.inv', 's.inv' ending in '.inv', which names "
                           r"the inverses the builder generates; deny them \(deny: \['\*.inv'\]\), or rename them in "
                           r"toy.kg$"):  # fmt: skip
            build_graph(dataset, recipe_from_dict({"inverse": inverse}))  # before: no way out named
    kg = build_graph(dataset, recipe_from_dict({"inverse": True, "deny": ["*.inv"]}))
    assert {(h[1], r, t[1]) for h, r, t in typed_triples(kg)} == {("i1", "r", "x"), ("x", "r.inv", "i1")}
    assert list(kg.inverse_of) == [-1, 0]


def test_min_degree_notes_relations_it_emptied_when_user_edges_keep_the_graph(toy):
    notes: list[str] = []
    kg = build_graph(toy, recipe_from_dict({"users": True, "min_degree": 9}), notes=notes)
    assert kg.n_triples == len(toy.train)  # only the user edges are left
    assert ("min_degree 9 dropped every triple of 2 of 2 relations (film.film.directed_by, film.film.starring), which "
            "stay in the graph without triples; lower min_degree, or deny them") in notes  # fmt: skip  # before: not said


def test_float_attribute_values_keep_every_digit_that_tells_them_apart(atomic):
    """``:g`` named nodes by 6 digits, so 40.712776 and 40.71279 became one value node; they are
    written as text templates write numbers (shortest exact form; whole numbers without ``.0``)."""
    folder = atomic(
        inter="user_id:token|item_id:token\nu|i1\nu|i2\nu|i3",
        item="item_id:token|lat:float\ni1|40.712776\ni2|40.71279\ni3|1995.0",
    )
    kg = build_graph(load_dataset(folder), recipe_from_dict({"kg": False, "attributes": [{"column": "lat", "relation": "at"}]}))
    assert sorted(t[1] for _, _, t in typed_triples(kg)) == ["at=1995", "at=40.712776", "at=40.71279"]


def test_a_relation_named_with_brackets_is_matched_by_its_own_name(atomic):
    """``[1]`` in a pattern is a character class: ``allow: ['a[1]']`` kept ``a1``, never ``a[1]``."""
    folder = atomic(
        inter="user_id:token|item_id:token\nu|i1\nu|i2",
        kg="head_id:token|relation_id:token|tail_id:token\ne1|a[1]|x\ne2|a1|x\ne2|b|y",
        link="item_id:token|entity_id:token\ni1|e1\ni2|e2",
    )
    kg = build_graph(load_dataset(folder), recipe_from_dict({"allow": ["a[1]"]}))
    assert sorted({r for _, r, _ in typed_triples(kg)}) == ["a1", "a[1]"]  # the name, and what the pattern matches
    kg = build_graph(load_dataset(folder), recipe_from_dict({"deny": ["a[1]"]}))
    assert sorted({r for _, r, _ in typed_triples(kg)}) == ["b"]
