"""Audit of the explanations: every claim recomputed independently (the training split's arrays,
the graph's triples, networkx), edge cases, and the cost of the bounded path search."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from kgrec.graph import build_graph, recipe_from_dict
from kgrec.graph.kg import ENTITY, ITEM, KnowledgeGraph
from kgrec.retrieval import Recommender
from kgrec.retrieval import explain as explain_module
from kgrec.retrieval.catalog import Catalog
from kgrec.retrieval.explain import Explainer, HistoryItem

DEMO = Path(__file__).resolve().parents[2] / "runs" / "ml-100k"


def training_truth(rec: Recommender) -> tuple[dict[tuple[int, int], float | None], dict[int, set[int]]]:
    """``(user, item) -> rating`` of the training split, and per item the users who liked it."""
    train, threshold = rec.run.dataset.train, float(rec.run.config.model.like_threshold)
    ratings = train.rating if train.rating is not None else [None] * len(train.user)
    rated, liked = {}, defaultdict(set)
    for u, i, r in zip(train.user.tolist(), train.item.tolist(), ratings, strict=True):
        rated[(u, i)] = None if r is None else float(r)
        if r is None or r >= threshold:
            liked[i].add(u)
    return rated, liked


def check_paths(rec: Recommender, explanation, triples: set[tuple[int, int, int]]) -> None:
    """Each hop's relations are triples of the run's graph, in the direction shown; none is a user edge."""
    kg = rec.run.graph
    for path in explanation.paths:
        for hop in path.path.hops:
            for r in hop.relations:
                edge = (hop.source, r, hop.target) if hop.forward else (hop.target, r, hop.source)
                assert edge in triples, path.text
                assert "interacted" not in str(kg.relation_names[r]), path.text


def check_user(rec: Recommender, user: str, k: int) -> int:
    rated, liked = training_truth(rec)
    u, cat = rec.user_index(user), rec.catalog
    kg = rec.run.graph
    triples = set(zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist(), strict=True))
    threshold = float(rec.run.config.model.like_threshold)
    results = rec.recommend(user, k=k)
    again = rec.recommend(user, k=k)
    for result, repeat in zip(results, again, strict=True):
        why = result.explanation
        assert why.to_dict() == repeat.explanation.to_dict()  # the same query, the same words
        for token in why.related_items:  # training items of this user only, never valid/test ones
            assert (u, cat.position(token)) in rated, (user, token)
        for path in why.paths:
            m = re.match(r"you rated (.+) highly \(([\d.]+)\) -", path.text)
            if m:
                x = cat.position(path.from_item)
                assert m.group(1) == cat.titles[x] and float(m.group(2)) == rated[(u, x)] >= threshold, path.text
        check_paths(rec, why, triples)
        if why.related_items:
            x, t = cat.position(why.related_items[0]), cat.position(result.item_id)
            expected = (len(liked[x] & liked[t]), len(liked[x])) if liked[x] and liked[t] else None
            assert why.co_liked == expected, (user, result.item_id)
            if expected and expected[0]:
                assert f"liked by {expected[0]} of the {expected[1]} users who liked {cat.titles[x]}" in why.text
    return len(results)


def test_recommend_explanations_agree_with_the_training_split_and_the_graph(trained_run: Path):
    rec = Recommender.open(trained_run)
    assert sum(check_user(rec, user, 12) for user in ("u0", "u1", "u5", "u22")) == 48


def test_similar_explanations_are_shortest_content_paths_with_true_counts(trained_run: Path):
    rec = Recommender.open(trained_run)
    kg, cat = rec.run.graph, rec.catalog
    _, liked = training_truth(rec)
    triples = set(zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist(), strict=True))
    content = nx.Graph()
    content.add_nodes_from(range(kg.n_nodes))
    content.add_edges_from(zip(kg.head.tolist(), kg.tail.tolist(), strict=True))
    kinds = set()
    for source in ("i0", "i7", "i13"):
        s = cat.position(source)
        for result in rec.similar(source, k=20):
            why, t = result.explanation, cat.position(result.item_id)
            kinds.add(why.kind)
            assert why.co_liked == ((len(liked[s] & liked[t]), len(liked[s])) if liked[s] and liked[t] else None)
            check_paths(rec, why, triples)
            hops = nx.shortest_path_length(content, s, t) if nx.has_path(content, s, t) else None
            if why.kind == "kg_path":
                assert len(why.paths[0].path) == hops
            else:
                assert hops is None or hops > 3, (source, result.item_id)
    assert kinds == {"kg_path", "similar_items"}


def test_a_user_who_liked_nothing_is_explained_by_their_best_rated_item(trained_run: Path):
    rec = Recommender.open(trained_run)
    explainer, cat = rec.explainer, rec.catalog
    history = [HistoryItem(cat.position("i1"), 2.0), HistoryItem(cat.position("i5"), 3.0)]
    why = explainer.for_user(history, cat.position("i9"))  # i1, i5, i9: one cluster, one genre
    assert why.kind == "kg_path" and why.related_items == ("i5",), why.text
    assert why.text.startswith("you rated Film 5 (3) -") and "highly" not in why.text
    clicks = explainer.for_user([HistoryItem(cat.position("i5"), None)], cat.position("i9"))
    assert clicks.text.startswith("you interacted with Film 5 -")


def test_a_removed_history_item_explains_nothing(run_copy: Path):
    rec = Recommender.open(run_copy)
    first = rec.recommend("u1", k=5)
    gone = first[0].explanation.related_items[0]
    rec.remove_items([gone])
    title = re.compile(rf"\bFilm {gone[1:]}\b")
    for result in rec.recommend("u1", k=20):
        why = result.explanation
        assert gone not in why.related_items and not title.search(why.text), why.text
        assert all(gone not in p.ids for p in why.paths)


def test_user_nodes_change_no_explanation(trained_run: Path):
    """A graph with user nodes: through a user, any two items they both rated would meet."""
    rec = Recommender.open(trained_run)
    ds, cat = rec.run.dataset, rec.catalog
    with_users = build_graph(ds, recipe_from_dict({"users": True, "inverse": True}))
    without = build_graph(ds, recipe_from_dict({"users": False, "inverse": True}))
    a = Explainer(with_users, cat, centre=rec.item_centre, liked_by=rec.explainer.liked_by)
    b = Explainer(without, cat, centre=rec.item_centre, liked_by=rec.explainer.liked_by)
    history = rec.history(rec.user_index("u2"))
    for target in range(0, 60, 3):
        for x, y in ((a.for_user(history, target), b.for_user(history, target)), (a.for_similar(2, target), b.for_similar(2, target))):
            assert x.to_dict() == y.to_dict()
            assert not any("interacted" in r for p in x.paths for hop in p.relations for r in hop)


def chain_explainer(titles: list[str]) -> tuple[Explainer, KnowledgeGraph]:
    """Items 0-1 three hops apart (0 - x - y - 1), items 2-3 four (2 - z - w - v - 3)."""
    head = np.asarray([0, 4, 1, 2, 6, 7, 3])
    relation = np.asarray([0, 1, 0, 0, 1, 1, 0])
    tail = np.asarray([4, 5, 5, 6, 7, 8, 8])
    keys = np.asarray(["i0", "i1", "i2", "i3", "Xavier", "Yvonne", "Zoe", "Walter", "Vera"], dtype=object)
    names = np.asarray([*titles, *keys[4:]], dtype=object)
    kg = KnowledgeGraph(head, relation, tail, np.asarray(["film.directed_by", "people.spouse"], dtype=object),
                        np.asarray([-1, -1]), np.asarray([ITEM] * 4 + [ENTITY] * 5, dtype=np.int8), names, keys, 4)  # fmt: skip
    vectors = np.random.default_rng(0).normal(size=(4, 8))
    catalog = Catalog(list(keys[:4]), titles, vectors, {}, {}, n_base=4)
    return Explainer(kg, catalog), kg


def test_no_networkx_search_for_pairs_beyond_max_hops(monkeypatch: pytest.MonkeyPatch, trained_run: Path):
    """``find_paths`` spent 20-50 ms on ml-100k on each pair it could not join within 3 hops
    (``similar 646``: 0.35 s with explanations, 1 ms without); it must run only when a path exists."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[1:3])
        return find_paths(*args, **kwargs)

    find_paths = explain_module.find_paths
    monkeypatch.setattr(explain_module, "find_paths", counted)
    explainer, kg = chain_explainer(["A", "B", "C", "D"])
    (path,) = explainer.paths_between(0, 1, 3, slow=True)
    assert path.nodes == (0, 4, 5, 1) and calls == [(0, 1)]
    assert explainer.paths_between(2, 3, 3, slow=True) == [] and explainer.paths_between(0, 3, 3, slow=True) == []
    assert calls == [(0, 1)]
    rec = Recommender.open(trained_run)  # the clusters share no node: no path between them
    results = rec.similar("i0", k=40)
    assert sum(r.explanation.kind == "similar_items" for r in results) > 20 and calls == [(0, 1)]
    graph = nx.Graph(list(zip(kg.head.tolist(), kg.tail.tolist(), strict=True)))
    for a in range(9):
        for b in set(range(9)) - {a}:
            near = nx.has_path(graph, a, b) and nx.shortest_path_length(graph, a, b) <= 3
            assert explainer._within(a, b, 3) == near, (a, b)


def test_titles_with_arrows_and_brackets_are_shown_whole():
    titles = ["Alpha -genre-> (Beta)", "Ω <i1> | 50%", "C", "D"]
    explainer, _ = chain_explainer(titles)
    why = explainer.for_user([HistoryItem(0, 5.0)], 1)
    assert why.text == f"you rated {titles[0]} highly (5) -directed_by-> Xavier -spouse-> Yvonne <-directed_by- {titles[1]}"
    assert explainer.for_similar(1, 0).text == f"{titles[1]} -directed_by-> Yvonne <-spouse- Xavier <-directed_by- {titles[0]}"


@pytest.mark.skipif(not (DEMO / "manifest.json").exists(), reason="no trained demo run at runs/ml-100k")
def test_demo_run_explanations_agree_with_its_training_split():
    rec = Recommender.open(DEMO)
    assert sum(check_user(rec, user, 10) for user in ("196", "685", "13")) == 30  # 685 rated nothing above 3


def test_warm_up_builds_the_graph_view_of_the_path_search(trained_run):
    """The first explanation needing a 3-hop path built networkx's graph (about 0.5 s on ml-100k)
    at a user's query; ``warm_up`` builds it before ``kgrec serve`` takes requests."""
    from kgrec.graph import find_paths
    from kgrec.retrieval import Recommender

    rec = Recommender.open(trained_run)
    kg = rec.run.graph
    assert not kg._cache.get("undirected")
    assert "similar" in rec.warm_up().seconds
    (view,) = kg._cache["undirected"].values()
    find_paths(kg, 0, 1, max_hops=3, exclude=rec.explainer._excluded_names())
    assert list(kg._cache["undirected"].values()) == [view]  # what the explanations' search reads, not rebuilt
