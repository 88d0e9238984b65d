"""Explanation paths as JSON (``--json``, the HTTP answers) name nodes and relations by what they
are in the dataset's files (raw ids, relation names), not by the graph's internal numbers."""

from __future__ import annotations

from pathlib import Path

from kgrec.retrieval import Recommender
from tests.retrieval.test_recommender import write_new_items


def check_paths(rec: Recommender, result_id: str, explanation) -> int:
    kg, checked = rec.run.graph, 0
    for path in explanation.paths:
        out = path.to_dict()
        assert "nodes" not in out and out["ids"][0] == out["from_item"] and out["ids"][-1] == result_id
        nodes = path.path.nodes
        assert len(out["ids"]) == len(nodes) == len(out["names"])
        for v, raw in zip(nodes[1:-1], out["ids"][1:-1], strict=True):
            assert raw == str(kg.keys[v])  # an entity id, or relation=value for an attribute value
        for hop, shown in zip(path.path.hops, out["hops"], strict=True):
            assert shown["relations"] == [str(kg.relation_names[r]) for r in hop.relations]
            assert all(isinstance(name, str) for name in shown["relations"]) and shown["forward"] == hop.forward
        checked += 1
    return checked


def test_recommend_and_similar_paths_carry_raw_ids_and_relation_names(trained_run: Path):
    rec = Recommender.open(trained_run)
    checked = sum(check_paths(rec, r.item_id, r.explanation) for user in ("u0", "u1", "u2") for r in rec.recommend(user, k=8))
    checked += sum(check_paths(rec, r.item_id, r.explanation) for r in rec.similar("i0", k=5))
    assert checked > 0


def test_a_path_to_an_added_item_ends_at_its_own_id(run_copy: Path, tmp_path: Path):
    rec = Recommender.open(run_copy)
    rec.add_items(*write_new_items(tmp_path))
    (result,) = rec.recommend("u1", k=60, where=["title=New Film 1"])
    assert result.explanation.kind == "kg_path"  # through the new item's own links, outside the stored graph
    assert check_paths(rec, "n1", result.explanation) > 0
    for path in rec.similar("n2", k=5)[0].explanation.paths:
        assert path.to_dict()["ids"][0] == "n2"


def test_no_words_for_a_count_of_no_user_who_liked_both(trained_run: Path):
    """"liked by 0 of the 12 users who liked X" read as a reason for the result."""
    rec = Recommender.open(trained_run)
    explainer = rec.explainer
    pairs = [(a, b) for a in range(12) for b in range(12) if a != b and (co := explainer.co_liked(a, b)) and co[0] == 0]
    assert pairs, "the tiny run has a pair of items no user liked both of"
    a, b = pairs[0]
    co, words = explainer._co_liked_clause(a, b)
    assert co[0] == 0 and co[1] > 0 and words == ""
    liked = [(a, b) for a in range(12) for b in range(12) if a != b and (co := explainer.co_liked(a, b)) and co[0] > 0]
    assert explainer._co_liked_clause(*liked[0])[1].startswith("; liked by ")
