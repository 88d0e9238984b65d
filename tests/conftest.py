"""Shared fixtures: tiny atomic datasets written in a few lines, and the cached ml-100k."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


def write_atomic(folder: Path, name: str, files: dict[str, str]) -> Path:
    """Write ``{ext: text}`` as ``folder/name/name.ext`` and return the dataset folder.

    Text uses ``|`` for tabs so fixtures stay readable: ``"user_id:token|item_id:token\\n1|a"``.
    """
    root = folder / name
    root.mkdir(parents=True, exist_ok=True)
    for ext, text in files.items():
        (root / f"{name}.{ext}").write_text(text.replace("|", "\t").strip("\n") + "\n", encoding="utf-8")
    return root


@pytest.fixture
def atomic(tmp_path: Path) -> Callable[..., Path]:
    """``atomic(name="toy", inter=..., item=..., kg=..., link=...)`` -> dataset folder."""

    def make(name: str = "toy", **files: str) -> Path:
        return write_atomic(tmp_path, name, {ext.replace("_", "."): text for ext, text in files.items()})

    return make


TOY_INTER = """
user_id:token|item_id:token|rating:float|timestamp:float
u1|i1|5|1
u1|i2|4|2
u1|i3|1|3
u2|i1|3|1
u2|i4|5|2
u3|i2|2|5
u3|i4|4|6
u3|i5|5|7
"""
TOY_ITEM = """
item_id:token|title:token|class:token_seq
i1|Alpha|Action Comedy
i2|Beta|Comedy
i3|Gamma|Drama
i4|Delta|Action
i5|Epsilon|Drama Comedy
i6|Zeta|Action
"""
TOY_KG = """
head_id:token|relation_id:token|tail_id:token
e1|film.film.directed_by|d1
e2|film.film.directed_by|d1
e4|film.film.starring|a1
e5|film.film.starring|a1
e3|film.film.directed_by|d2
"""
TOY_LINK = """
item_id:token|entity_id:token
i1|e1
i2|e2
i3|e3
i4|e4
i5|e5
"""


@pytest.fixture
def toy_dataset(atomic: Callable[..., Path]) -> Path:
    """Three users, six items (i6 never interacted), a KG of five triples linked to i1..i5."""
    return atomic(inter=TOY_INTER, item=TOY_ITEM, kg=TOY_KG, link=TOY_LINK)


@pytest.fixture(scope="session")
def ml100k() -> Path:
    """ml-100k fetched once per machine into $KGREC_HOME (pip download of the recbole wheel).

    Skipped when KGREC_OFFLINE=1 and the dataset is not cached yet.
    """
    from kgrec.data import fetch, kgrec_home

    cached = kgrec_home() / "datasets" / "ml-100k" / ".kgrec-fetch.json"
    if os.environ.get("KGREC_OFFLINE") == "1" and not cached.exists():
        pytest.skip("KGREC_OFFLINE=1 and ml-100k is not cached")
    return fetch("ml-100k")
