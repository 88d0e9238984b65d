"""Graph fixtures: the shared toy dataset loaded, and a tiny dataset with a given split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kgrec.data import Dataset, load_dataset
from kgrec.graph import GraphRecipe, KnowledgeGraph, build_graph, recipe_from_dict

# Toy KG (tests/conftest.py): i1..i5 link to e1..e5; i1, i2 -directed_by-> d1; i4, i5 -starring-> a1;
# i3 -directed_by-> d2; i6 has no link. Items: i1 Alpha, i2 Beta, i3 Gamma, i4 Delta, i5 Epsilon, i6 Zeta.


@pytest.fixture
def toy(toy_dataset: Path) -> Dataset:
    return load_dataset(toy_dataset)


@pytest.fixture
def build(toy: Dataset) -> Callable[..., KnowledgeGraph]:
    """``build(**recipe_keys)`` -> the toy graph built with that recipe."""

    def make(**keys: object) -> KnowledgeGraph:
        return build_graph(toy, recipe_from_dict(keys) if keys else GraphRecipe())

    return make


@pytest.fixture
def split_dataset(atomic: Callable[..., Path]) -> Path:
    """Given split: train u1-i1, u1-i2, u2-i3; valid u1-i3; test u2-i1 (never edges)."""
    header = "user_id:token|item_id:token"
    return atomic(
        name="split",
        item="item_id:token|title:token\ni1|One\ni2|Two\ni3|Three",
        train_inter=f"{header}\nu1|i1\nu1|i2\nu2|i3",
        valid_inter=f"{header}\nu1|i3",
        test_inter=f"{header}\nu2|i1",
    )
