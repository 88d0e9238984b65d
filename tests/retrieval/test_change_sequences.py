"""Sequences of catalog changes, index builds and queries on one run: a crash mid-save, a title
a removed item shares with an active one, new columns whose first value is empty."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kgrec.retrieval import Recommender
from kgrec.retrieval.catalog import AddedItem
from kgrec.retrieval.recommender import INDEX_DIR


def write(path: Path, text: str) -> Path:
    path.write_text(text.replace("|", "\t").strip() + "\n", encoding="utf-8")
    return path


def new_items(folder: Path, rows: str, header: str = "item_id:token|title:token|class:token_seq") -> tuple[Path, Path, Path]:
    """A ``.item`` file of ``rows`` (``id|title|genre...``), each item linked to a new entity
    ``e_ID`` of genre ``g3`` (so that the graph pathway embeds it: the run has no text)."""
    ids = [line.split("|")[0] for line in rows.strip().splitlines()]
    items = write(folder / "new.item", f"{header}\n{rows.strip()}")
    link = write(folder / "new.link", "item_id:token|entity_id:token\n" + "\n".join(f"{i}|e_{i}" for i in ids))
    kg = write(folder / "new.kg", "head_id:token|relation_id:token|tail_id:token\n" + "\n".join(f"e_{i}|film.genre|g3" for i in ids))
    return items, link, kg


def test_an_index_swap_cut_short_by_a_crash_is_put_back_not_replaced_by_a_default_index(run_copy: Path):
    Recommender.open(run_copy, index="hnsw", rebuild=True)
    # atomic_dir's first rename (index -> .index.old), then the crash before the second
    os.replace(run_copy / INDEX_DIR, run_copy / f".{INDEX_DIR}.old")
    again = Recommender.open(run_copy, build_missing=False)  # it said "no index yet" (a default flat one with build_missing)
    assert again.index.kind == "hnsw" and again.index.count == 60
    assert (run_copy / INDEX_DIR / "manifest.json").is_file() and not (run_copy / f".{INDEX_DIR}.old").exists()


def test_a_title_a_removed_item_shares_with_an_active_one_excludes_the_active_one(run_copy: Path, tmp_path: Path):
    rec = Recommender.open(run_copy)
    title = rec.catalog.titles[rec.catalog.position("i3")]
    rec.remove_items("i3")
    rec.add_items(*new_items(tmp_path, f"r3|{title}|Horror"))  # i3 again, under a new id, as the notes advise
    assert rec.catalog.titles[rec.catalog.position("r3")] == title
    assert rec.similar(title, k=1, explain=False)  # the title names r3 as a query item ...
    found = rec.similar("i7", k=rec.catalog.n_active - 1, exclude=title, explain=False)  # ... and in exclude
    ids = [r.item_id for r in found]
    assert "r3" not in ids and "i3" not in ids and len(ids) == rec.catalog.n_active - 2


def test_a_new_number_column_whose_first_added_value_is_empty_still_opens(run_copy: Path, tmp_path: Path):
    rec = Recommender.open(run_copy)
    files = new_items(tmp_path, "n1|Moon Base|Horror|\nn2|Sun Base|Horror|5.5", "item_id:token|title:token|class:token_seq|budget:float")
    rec.add_items(*files)
    assert [r.item_id for r in rec.recommend("u3", k=5, where="budget=5.5", explain=False)] == ["n2"]
    again = Recommender.open(run_copy)  # the empty number was saved as null, read back as a text value
    assert [r.item_id for r in again.recommend("u3", k=5, where="budget=5.5", explain=False)] == ["n2"]
    assert again.catalog.feature_types["budget"] == "float"


def test_an_empty_list_first_leaves_a_new_list_column_open_to_numbers(run_copy: Path):
    rec = Recommender.open(run_copy)
    vectors = np.zeros((2, rec.catalog.dim), np.float32)
    items = [AddedItem("n1", "N1", {"scores": []}), AddedItem("n2", "N2", {"scores": [0.5, 1.0]})]
    assert rec.catalog.with_added(items, vectors).feature_types["scores"] == "float_seq"
