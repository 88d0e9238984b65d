"""Items added after training: their text-encoder vectors (what ``search`` compares) and the notes
``add_items`` gives about their rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from kgrec.retrieval import Recommender
from tests.retrieval.test_recommender import write_new_items


def copy_run(run: Path, folder: Path) -> Path:
    return Path(shutil.copytree(run, folder, ignore=shutil.ignore_patterns("checkpoints", "logs")))


def test_items_added_through_the_graph_alone_are_found_by_search(text_run: Path, tmp_path: Path):
    """``--pathways graph`` left their text-encoder vectors NaN, so search never returned them."""
    files = write_new_items(tmp_path)
    by_graph = Recommender.open(copy_run(text_run, tmp_path / "graph"))
    by_graph.add_items(*files, pathways=["graph"])
    assert all(a.via == ("graph",) for a in by_graph.catalog.added)  # the retrieval vectors read no text
    both = Recommender.open(copy_run(text_run, tmp_path / "both"))
    both.add_items(*files)
    assert np.isfinite(by_graph.catalog.added_encoded).all()
    np.testing.assert_allclose(by_graph.catalog.added_encoded, both.catalog.added_encoded, rtol=1e-5, atol=1e-6)
    assert not np.allclose(by_graph.catalog.vectors[-4:], both.catalog.vectors[-4:])  # pathways still differ there
    for c in range(4):
        assert by_graph.search(f"New Film {c}", k=5, explain=False)[0].item_id == f"n{c}"
    again = Recommender.open(by_graph.path)  # and so it stays, read back from the run folder
    assert again.search("New Film 2", k=1, explain=False)[0].item_id == "n2"


def test_a_row_without_any_value_is_added_with_a_note(run_copy: Path, tmp_path: Path):
    (tmp_path / "e.item").write_text("item_id:token\ttitle:token\tclass:token_seq\ne1\t\t\nn5\tNew Film 5\tComedy\n")
    (tmp_path / "e.link").write_text("item_id:token\tentity_id:token\ne1\tne1\nn5\tne5\n")
    (tmp_path / "e.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\nne1\tfilm.genre\tg0\nne5\tfilm.genre\tg0\n")
    rec = Recommender.open(run_copy)
    added = rec.add_items(tmp_path / "e.item", tmp_path / "e.link", tmp_path / "e.kg")
    assert added == ["e1", "n5"] and rec.catalog.titles[rec.catalog.position("e1")] == "e1"
    [note] = [n for n in added.notes if "no value" in n]
    assert note.startswith("1 new item ('e1') has no value in any column of e.item: its title and the text that "
                           "searches compare are its id alone")
    assert "n5" not in note
