"""Audit of the dataset loader: id numbering, parts, repeated pairs, CTR labels, features and
links checked against brute-force references on small random datasets."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from kgrec.data import SplitConfig, load_dataset
from kgrec.errors import DataError, DataWarning
from tests.conftest import write_atomic

ALL_TRAIN = SplitConfig(ratios=(1.0, 0.0, 0.0))
USERS = ["u1", "ü2", "u 3", "99999999999999999999999", "\u00e9", "e\u0301", "U1", " u1"]  # é twice (NFC, NFD)
ITEMS = ["i1", "i2", "ітем", "0", "00", "1e400", "x y", "I1", "i1 "]


def _pairs(ds, part) -> list[tuple[str, str]]:
    return [(str(ds.users[u]), str(ds.items[i])) for u, i in zip(part.user, part.item, strict=True)]


def test_a_click_is_not_replaced_by_a_later_impression_without_one(atomic):
    """Repeated pairs were reduced to the latest row before rows with label 0 were left out: a
    click followed by an impression of the same item without a click kept the impression, then
    dropped it, and the click was lost (a file of such pairs alone was refused as having no
    interaction; ``duplicates="error"`` refused the impression as a repeat)."""
    head = "user_id:token|item_id:token|label:float|timestamp:float\n"
    data = atomic(name="ctr", inter=head + "u1|a|1|1\nu1|a|0|5\nu1|b|1|2\nu2|a|1|3\nu2|b|0|4")
    with pytest.warns(DataWarning, match=r"ctr\.inter: 2 of 5 rows have label 0 or less"):
        ds = load_dataset(data, ALL_TRAIN)
    assert _pairs(ds, ds.train) == [("u1", "a"), ("u1", "b"), ("u2", "a")]
    assert ds.train.timestamp.tolist() == [1.0, 2.0, 3.0]  # the click's own row
    assert ds.items.tolist() == ["a", "b"]  # u2's unclicked b stays in the catalogue
    with pytest.warns(DataWarning):
        strict = load_dataset(data, ALL_TRAIN, duplicates="error")
    assert len(strict.train) == 3
    only = atomic(name="only", inter=head + "u1|a|1|1\nu1|a|0|2")
    with pytest.warns(DataWarning, match=r"1 of 2 rows"):
        alone = load_dataset(only, ALL_TRAIN)  # was refused: "every row has label 0 or less"
    assert _pairs(alone, alone.train) == [("u1", "a")]


def test_a_repeated_pair_is_refused_at_the_line_that_repeats_it(atomic):
    """``duplicates="error"`` named the pair's row latest by time (line 2, the first in the file,
    when a later line holds an earlier time) or the first pair in index order rather than the
    first repeat in the file, and named neither the pair nor the line it repeats."""
    by_time = atomic(name="t", inter="user_id:token|item_id:token|timestamp:float\nu|i|9\nu|j|1\nu|i|1")
    with pytest.raises(DataError, match=r"t\.inter:4: repeated \(user_id, item_id\) pair \('u', 'i'\), first on line "
                                        r"2: expected one row per pair"):  # fmt: skip
        load_dataset(by_time, duplicates="error")
    by_line = atomic(name="l", inter="user_id:token|item_id:token\nx|y\nu|i\nu|j\n\nu|i\nx|y")
    with pytest.raises(DataError, match=r"l\.inter:6: repeated \(user_id, item_id\) pair \('u', 'i'\), first on line 3"):
        load_dataset(by_line, duplicates="error")
    clicks = atomic(name="c", inter="user_id:token|item_id:token|label:float\nu|i|0\nu|j|1\nu|i|1\nu|i|1")
    with pytest.warns(DataWarning), pytest.raises(DataError, match=r"c\.inter:5: .*\('u', 'i'\), first on line 4"):
        load_dataset(clicks, duplicates="error")


def _reference_part(rows: list[tuple], has_ts: bool, has_label: bool) -> list[tuple]:
    """The interactions of one file, as the README says: rows with label 0 or less are none,
    and of each repeated (user, item) pair the latest by time, then by line, in file order."""
    kept: dict[tuple[str, str], tuple[int, tuple]] = {}
    for line, row in enumerate(rows):
        if has_label and row[4] <= 0:
            continue
        old = kept.get(row[:2])
        if old is None or not has_ts or row[3] >= old[1][3]:
            kept[row[:2]] = (line, row)
    return [row for _, row in sorted(kept.values())]


def _random_rows(rng: np.random.Generator, n: int, has_label: bool) -> list[tuple]:
    """(user, item, rating, timestamp, label) rows; the first a click."""
    rows = [(str(rng.choice(USERS)), str(rng.choice(ITEMS)), int(rng.integers(1, 6)), int(rng.integers(0, 3)),
             int(rng.integers(0, 2)) if has_label else 1) for _ in range(n)]  # fmt: skip
    rows[0] = (*rows[0][:4], 1)
    return rows


def _as_file(rows: list[tuple], keep: tuple[bool, bool, bool]) -> str:
    """An interaction file of ``rows`` with the rating, timestamp and label columns ``keep`` says."""
    names = ("rating:float", "timestamp:float", "label:float")
    head = "user_id:token|item_id:token" + "".join(f"|{n}" for n, k in zip(names, keep, strict=True) if k)
    flags = (True, True, *keep)
    return head + "".join("\n" + "|".join(str(v) for v, k in zip(r, flags, strict=True) if k) for r in rows)


def _read_back(ds, part, has_rating: bool, has_ts: bool) -> list[tuple]:
    """A part as (user, item[, rating][, timestamp]) tuples of raw ids."""
    out = [list(p) for p in _pairs(ds, part)]
    for values, on in ((part.rating, has_rating), (part.timestamp, has_ts)):
        for value, row in zip(values if on else [], out, strict=False):
            row.append(int(value))
    return [tuple(r) for r in out]


@pytest.mark.parametrize("seed", range(4))
def test_loading_matches_a_brute_force_reference(tmp_path: Path, seed: int):
    """Random small datasets (unicode, spaced, look-alike and huge ids; labels; ties in time;
    given splits whose valid and test hold users and items train lacks; items in .item alone):
    id maps in order of first appearance (.item first), each part's interactions as the
    reference keeps them, every kept interaction in exactly one part, item columns aligned."""
    rng = np.random.default_rng(seed)
    for trial in range(12):
        has_rating, has_ts, has_label, given = (bool(rng.random() < p) for p in (0.6, 0.7, 0.5, 0.5))
        keep = (has_rating, has_ts, has_label)
        sizes = [int(rng.integers(1, 9)) for _ in range(3)] if given else [int(rng.integers(1, 25))]
        parts = [_random_rows(rng, n, has_label) for n in sizes]
        names = ("train.inter", "valid.inter", "test.inter") if given else ("inter",)
        files = {name: _as_file(part, keep) for name, part in zip(names, parts, strict=True)}
        listed = list(dict.fromkeys(rng.choice(ITEMS + ["never"], size=4).tolist())) if rng.random() < 0.5 else []
        every = [r for part in parts for r in part]
        if listed and not any(r[1] in listed and r[4] > 0 for r in every):
            listed.append(every[0][1])  # an item file none of whose ids occurs is refused (tested elsewhere)
        if listed:
            files["item"] = "item_id:token|title:token" + "".join(f"\n{i}|T{i}" for i in listed)
        folder = write_atomic(tmp_path / f"{seed}-{trial}", "d", files)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            ds = load_dataset(folder, SplitConfig(ratios=(0.6, 0.2, 0.2), seed=seed))
        where = f"trial {trial}: {folder}"
        assert ds.items.tolist() == list(dict.fromkeys(listed + [r[1] for r in every])), where
        assert ds.users.tolist() == list(dict.fromkeys(r[0] for r in every)), where
        want = [[r[:2] + (r[2],) * has_rating + (r[3],) * has_ts for r in _reference_part(p, has_ts, has_label)]
                for p in parts]  # fmt: skip
        got = [_read_back(ds, part, has_rating, has_ts) for part in (ds.train, ds.valid, ds.test)]
        if given:
            assert got == want, where
        else:
            assert sorted(got[0] + got[1] + got[2]) == sorted(want[0]), where
        if listed:
            assert ds.item_features["title"].tolist() == [f"T{i}" if i in listed else "" for i in ds.items], where
            assert ds.item_rows == len(listed)


def test_entities_links_and_kg_match_a_brute_force_reference(tmp_path: Path):
    """Entities numbered .kg heads, then tails, then .link entities (module docstring); links to
    entities outside the KG kept (``items_in_kg`` false for them); items never linked get -1."""
    rng = np.random.default_rng(7)
    entities = ["e1", "e2", "é3", "e 4", "99999999999999999999", "E1"]
    for trial in range(20):
        triples = [(str(rng.choice(entities)), str(rng.choice(["r1", "ρ"])), str(rng.choice(entities)))
                   for _ in range(int(rng.integers(1, 6)))]  # fmt: skip
        in_kg = {t[0] for t in triples} | {t[2] for t in triples}
        links = {f"i{k}": str(rng.choice(entities + ["x8", "x9"])) for k in range(5) if rng.random() < 0.7}
        links[f"i{trial % 5}"] = sorted(in_kg)[0]  # one link in the KG at least (none is refused)
        folder = write_atomic(tmp_path / str(trial), "d", {
            "inter": "user_id:token|item_id:token" + "".join(f"\nu{k % 2}|i{k}" for k in range(5)),
            "item": "item_id:token" + "".join(f"\ni{k}" for k in range(7)),  # i5, i6 in .item alone
            "kg": "head_id:token|relation_id:token|tail_id:token" + "".join("\n" + "|".join(t) for t in triples),
            "link": "item_id:token|entity_id:token" + "".join(f"\n{i}|{e}" for i, e in links.items()),
        })  # fmt: skip
        ds = load_dataset(folder)
        heads_tails = [t[0] for t in triples] + [t[2] for t in triples]
        assert ds.entities.tolist() == list(dict.fromkeys(heads_tails + list(links.values())))
        assert ds.relations.tolist() == list(dict.fromkeys(t[1] for t in triples))
        read = zip(ds.kg.head, ds.kg.relation, ds.kg.tail, strict=True)
        assert [(ds.entities[h], ds.relations[r], ds.entities[t]) for h, r, t in read] == triples
        assert ds.items.tolist() == [f"i{k}" for k in range(7)]
        assert [None if e < 0 else ds.entities[e] for e in ds.item_entity] == [links.get(i) for i in ds.items]
        assert ds.items_in_kg().tolist() == [links.get(i) in in_kg for i in ds.items]


def test_header_only_side_files_and_ids_kept_verbatim(atomic):
    """An item, user or link file of a header alone loads (no rows, no links); ids differing only
    in surrounding spaces or Unicode normalisation are different ids, numbered as they appear."""
    data = atomic(
        inter="user_id:token|item_id:token\nu1|a\nu1 |a\n\u00e9|b\ne\u0301|b\nu1|12345678901234567890123",
        item="item_id:token|title:token",
        user="user_id:token|age:float",
        link="item_id:token|entity_id:token",
    )
    ds = load_dataset(data, ALL_TRAIN)
    assert ds.users.tolist() == ["u1", "u1 ", "\u00e9", "e\u0301"]
    assert ds.items.tolist() == ["a", "b", "12345678901234567890123"]
    assert ds.item_rows == 0 and ds.item_features["title"].tolist() == ["", "", ""]
    assert np.isnan(ds.user_features["age"]).all() and ds.item_entity.tolist() == [-1, -1, -1]
    assert len(ds.train) == 5
