"""Queries on a trained run: FAISS index, recommend / similar / search, predicted ratings,
explanations through the knowledge graph, cold-start items (``kgrec recommend`` ...).

Python first::

    from kgrec.retrieval import Recommender
    rec = Recommender.open("runs/ml-100k")
    rec.recommend("196", k=10, where=["class=Comedy"])
    rec.similar("50", k=5)
    rec.search("animated film for children", k=10)
    rec.recommend_for_new_user(liked=["50", "181"])
    rec.predict("196", ["242", "50"])   # the rating and like towers' answers
    rec.predict_pairs(["196", "186"], ["242", "302"])   # ... for many (user, item) pairs
    rec.add_items("new.item", link="new.link", kg="new.kg")
"""

from kgrec.retrieval.catalog import AddedItem, Catalog, Filter
from kgrec.retrieval.coldstart import Embedded, NewItems, embed_new_items, read_new_items
from kgrec.retrieval.explain import Explainer, Explanation, ExplanationPath, HistoryItem
from kgrec.retrieval.index import KINDS, IndexConfig, VectorIndex, load_index, vectors_sha256
from kgrec.retrieval.predict import Prediction
from kgrec.retrieval.recommender import AddedIds, Recommender, Result, WarmUp

__all__ = [
    "KINDS",
    "AddedIds",
    "AddedItem",
    "Catalog",
    "Embedded",
    "Explainer",
    "Explanation",
    "ExplanationPath",
    "Filter",
    "HistoryItem",
    "IndexConfig",
    "NewItems",
    "Prediction",
    "Recommender",
    "Result",
    "VectorIndex",
    "WarmUp",
    "embed_new_items",
    "load_index",
    "read_new_items",
    "vectors_sha256",
]
