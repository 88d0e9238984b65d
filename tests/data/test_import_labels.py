"""``kgrec data import --label-col``: a CSV of clicks and impressions without one becomes a
dataset whose label-0 rows are the like tower's negatives, located at the CSV file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.data.importer import ImportSpec, import_csv
from kgrec.errors import DataWarning


def test_a_label_column_keeps_impressions_without_a_click_apart(tmp_path: Path):
    rows = ["user,item,clicked,ts"]
    rows += [f"u{u},i{i},{int((u + i) % 3 == 0)},{10 * u + i}" for u in range(12) for i in range(10)]
    rows.append("u0,i0,0,999")  # u0 clicked i0 (line 2); shown again later without a click
    (tmp_path / "clicks.csv").write_text("\n".join(rows) + "\n")
    notes: list[str] = []
    spec = ImportSpec(interactions=tmp_path / "clicks.csv", out=tmp_path / "shop", user_col="user", item_col="item",
                      label_col="clicked", time_col="ts", note=notes.append)  # fmt: skip
    with pytest.warns(DataWarning, match=rf"^{tmp_path / 'clicks.csv'}: 81 of 121 rows have label 0 or less"):
        folder = import_csv(spec)
    with pytest.warns(DataWarning):
        dataset = load_dataset(folder)
    clicks = {(f"u{u}", f"i{i}") for u in range(12) for i in range(10) if (u + i) % 3 == 0}
    shown = {(f"u{u}", f"i{i}") for u in range(12) for i in range(10)} - clicks
    got = set()
    for part in ("train", "valid", "test"):
        negative = dataset.negatives(part)
        got |= set(zip(dataset.users[negative.user].tolist(), dataset.items[negative.item].tolist(), strict=True))
    assert got == shown and len(dataset.interactions()) == len(clicks)
    assert notes == [f"{tmp_path / 'clicks.csv'}: 1 of its 121 rows repeats a (user, item) pair, or label 0 a pair "
                     "another row labels 1 (the click wins); only the latest of each (by time, then by line) is kept"]  # fmt: skip
