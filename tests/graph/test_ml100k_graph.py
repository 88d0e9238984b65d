from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.graph import KnowledgeGraph, build_graph, explain_paths, load_recipe

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.network
def test_ml100k_graph_counts_and_paths(ml100k, tmp_path):
    dataset = load_dataset(ml100k)
    kg = build_graph(dataset, load_recipe(ROOT / "graphs" / "ml-100k.yaml"))
    assert kg.counts() == {
        "nodes": 34739, "items": 1682, "entities": 33057, "users": 0, "relations": 26, "triples": 96204,
    }  # fmt: skip
    assert kg.names[kg.item_node("50")] == "Star Wars (1977)"
    assert explain_paths(kg, "50", "181", n=1) == [
        "Star Wars (1977) -item.genre-> War <-item.genre- Return of the Jedi (1983)"
    ]
    back = KnowledgeGraph.load(kg.save(tmp_path / "ml-100k"), dataset=dataset)
    assert back.counts() == kg.counts()
