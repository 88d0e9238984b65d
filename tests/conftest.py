"""Shared fixtures: tiny atomic datasets written in a few lines, and the cached ml-100k."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from kgrec.train import RunConfig


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


WORDS = [
    "toy", "story", "golden", "eye", "four", "rooms", "film", "movie", "animated", "animation",
    "children", "comedy", "drama", "war", "action", "thriller", "for", "the", "a", "of", "and",
    "genres", "list", "1995", "1993", "(", ")", ".", ",", ":", "'", "s",
]  # fmt: skip


def make_tiny_bert(folder: Path, seed: int) -> Path:
    """A 2-layer, 32-d random BERT with a small word-level vocabulary, saved to ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)  # vocab_file: ignored by transformers 5
    config = BertConfig(
        vocab_size=len(dict.fromkeys(vocab)),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Two tiny BERT folders with different random weights."""
    root = tmp_path_factory.mktemp("models")
    return str(make_tiny_bert(root / "tiny-a", seed=1)), str(make_tiny_bert(root / "tiny-b", seed=2))


@pytest.fixture(scope="session")
def clustered_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 users, 60 items in 4 genre clusters; users like items of their cluster (ratings 4-5)
    and rate a few others low. Each item links to a KG entity with a 'genre' and a 'director'."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("data") / "clusters"
    root.mkdir()
    n_users, n_items, k = 40, 60, 4
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    t = 0
    for u in range(n_users):
        cluster = u % k
        own = [i for i in range(n_items) if i % k == cluster]
        other = [i for i in range(n_items) if i % k != cluster]
        for i in rng.choice(own, size=10, replace=False):
            t += 1
            lines.append(f"u{u}\ti{i}\t{rng.choice([4, 5])}\t{t}")
        for i in rng.choice(other, size=3, replace=False):
            t += 1
            lines.append(f"u{u}\ti{i}\t{rng.choice([1, 2])}\t{t}")
    (root / "clusters.inter").write_text("\n".join(lines) + "\n")
    genres = ["Comedy", "Drama", "Action", "Horror"]
    items = ["item_id:token\ttitle:token\tclass:token_seq"]
    items += [f"i{i}\tFilm {i}\t{genres[i % k]}" for i in range(n_items)]
    (root / "clusters.item").write_text("\n".join(items) + "\n")
    kg = ["head_id:token\trelation_id:token\ttail_id:token"]
    kg += [f"e{i}\tfilm.directed_by\td{i % k}_{i % 3}" for i in range(n_items)]
    kg += [f"e{i}\tfilm.genre\tg{i % k}" for i in range(n_items)]
    (root / "clusters.kg").write_text("\n".join(kg) + "\n")
    link = ["item_id:token\tentity_id:token"] + [f"i{i}\te{i}" for i in range(n_items)]
    (root / "clusters.link").write_text("\n".join(link) + "\n")
    return root


def with_late_joiners(clustered: Path, folder: Path) -> Path:
    """A copy of the clustered dataset whose ratings come at random times, except those of users
    u36-u39, who join late (the last 15% of the time span): cut by time (``global_temporal``),
    valid and test hold both users seen in training and users new after the cut."""
    import shutil

    data = Path(shutil.copytree(clustered, folder / clustered.name))
    lines = (data / "clusters.inter").read_text().splitlines()
    rng = np.random.default_rng(0)
    late = np.asarray([line.split("\t")[0] in ("u36", "u37", "u38", "u39") for line in lines[1:]])
    times = np.where(late, 0.85 + 0.15 * rng.random(len(late)), rng.random(len(late)))
    rows = [line.rsplit("\t", 1)[0] + f"\t{t * 1e6:.0f}" for line, t in zip(lines[1:], times, strict=True)]
    (data / "clusters.inter").write_text("\n".join([lines[0], *rows]) + "\n")
    return data


TINY_OVERRIDES = [
    "model.dim=16",
    "model.use_text=false",
    "model.trunk_hidden=[32]",
    "model.tower_hidden=[16]",
    "model.graph_bases=2",
    "train.batch_size=128",
    "train.kg_batch_size=64",
    "train.max_epochs=3",
    "train.progress=false",
    "train.accelerator=cpu",
    "train.devices=1",
]  # a fast config for tests: no text unless asked, small dims, a few epochs, no progress bar


def tiny_config(data: Path, *overrides: str) -> RunConfig:
    """A fast config for tests (:data:`TINY_OVERRIDES`) on the dataset folder ``data``."""
    from kgrec.train import load_config

    return load_config(None, [f"data.path={data}", *TINY_OVERRIDES, *overrides])
