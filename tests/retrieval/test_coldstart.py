"""New-item files are validated with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.errors import DataError
from kgrec.retrieval import read_new_items


def write(path: Path, text: str) -> Path:
    path.write_text(text.replace("|", "\t").strip() + "\n", encoding="utf-8")
    return path


def test_new_item_files_are_read_with_links_and_triples(tmp_path: Path):
    items = write(tmp_path / "n.item", "item_id:token|title:token|class:token_seq\nn1|A|Comedy Drama\nn2|B|Horror")
    link = write(tmp_path / "n.link", "item_id:token|entity_id:token\nn1|e1")
    kg = write(tmp_path / "n.kg", "head_id:token|relation_id:token|tail_id:token\ne1|film.genre|g0")
    new = read_new_items(items, link, kg)
    assert new.tokens == ["n1", "n2"] and new.links == {"n1": "e1"} and new.triples == [("e1", "film.genre", "g0")]
    assert new.as_dataset("x").item_names() == ["A", "B"]


def test_repeated_items_and_links_to_unknown_items_name_the_line(tmp_path: Path):
    items = write(tmp_path / "n.item", "item_id:token|title:token\nn1|A\nn2|B\nn1|C")
    with pytest.raises(DataError, match=r"n.item:4: column 'item_id:token': 'n1' appears again \(first on line 2\)"):
        read_new_items(items)
    items = write(tmp_path / "n.item", "item_id:token|title:token\nn1|A")
    link = write(tmp_path / "n.link", "item_id:token|entity_id:token\nn1|e1\nn9|e2")
    with pytest.raises(DataError, match=r"n.link:3: column 'item_id:token': item 'n9' is not in n.item"):
        read_new_items(items, link)
    link = write(tmp_path / "n.link", "item_id:token|entity_id:token\nn1|e1\nn1|e2")
    with pytest.raises(DataError, match="linked to a second entity"):
        read_new_items(items, link)
    with pytest.raises(DataError, match="missing required column 'item_id'"):
        read_new_items(write(tmp_path / "bad.item", "title:token\nA"))

