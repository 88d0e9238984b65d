"""Explanations and tower predictions of a trained run on edge cases."""

from __future__ import annotations

from pathlib import Path

from kgrec.retrieval import Recommender
from kgrec.retrieval.catalog import Catalog
from kgrec.retrieval.explain import Explainer, HistoryItem


def test_a_seen_item_is_never_explained_by_itself(run_copy: Path):
    """``recommend --include-seen`` returns items of the user's history: the closest history
    item to such a result is the result itself, which attributes or closeness then named."""
    rec = Recommender.open(run_copy)
    c = rec.catalog
    explainer = Explainer(None, Catalog(c.tokens, c.titles, c.vectors, c.features, c.feature_types, c.n_base),
                          centre=rec.item_centre)  # fmt: skip
    target = c.position("i5")
    history = [HistoryItem(target, 5.0), HistoryItem(c.position("i1"), 4.0), HistoryItem(c.position("i9"), 4.0)]
    why = explainer.for_user(history, target)
    assert "i5" not in why.related_items and why.text.count("Film 5") == 0, why.text
    alone = explainer.for_user([HistoryItem(target, 5.0)], target)  # nothing else to explain it by
    assert alone.kind == "model_score" and not alone.related_items, alone.text
