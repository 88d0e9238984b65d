"""A run's catalog (:class:`Catalog`): columns that items added in several batches give a type,
and a ``catalog.json`` damaged or edited by hand (an audit's findings). A catalog of three
trained items read through a stand-in dataset: no run is trained."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval.catalog import CATALOG_DIR, AddedItem, Catalog

DIM = 4
BASE = np.eye(3, DIM, dtype=np.float32)


def dataset() -> SimpleNamespace:
    """What :meth:`Catalog.from_run` reads of a dataset: three items, no columns."""
    return SimpleNamespace(items=np.array(["i0", "i1", "i2"]), n_items=3, item_features={}, item_feature_types={},
                           item_names=lambda: ["Alpha", "Beta", "Gamma"])  # fmt: skip


def base() -> Catalog:
    return Catalog.from_run(dataset(), BASE, "sha")  # type: ignore[arg-type]


def add(catalog: Catalog, item_id: str, **features) -> Catalog:
    return catalog.with_added([AddedItem(item_id, item_id.upper(), features, ("graph",))], np.ones((1, DIM)))


def ids(catalog: Catalog, mask: np.ndarray) -> list[str]:
    return [catalog.tokens[i] for i in np.flatnonzero(mask)]


@pytest.mark.parametrize("empty", ["", []], ids=["empty-text", "empty-list"])
def test_an_empty_cell_of_an_earlier_batch_leaves_a_new_column_open_to_numbers(empty, tmp_path: Path):
    """Batch one declared ``budget`` text (or a list) and left it empty; batch two gives a
    number. An empty text fixed the column as text ("holds text in the catalog, got 5.5"),
    against "a new column takes its type from the first value given, not from an empty cell";
    an empty list left ``[]`` in a number column, and its first filter crashed in numpy."""
    catalog = add(add(base(), "n1", budget=empty), "n2", budget=5.5)
    assert catalog.feature_types["budget"] == "float"
    assert ids(catalog, catalog.where_mask(["budget=5.5"])) == ["n2"]
    assert ids(catalog, catalog.where_mask(["budget!=5.5"])) == ["i0", "i1", "i2", "n1"]
    catalog.save(tmp_path)
    again = Catalog.load(tmp_path, dataset(), BASE, "sha")  # type: ignore[arg-type]
    assert again.feature_types["budget"] == "float" and ids(again, again.where_mask(["budget=5.5"])) == ["n2"]


def saved(tmp_path: Path) -> dict:
    """A catalog with one item added and one removed, saved in ``tmp_path``: its record."""
    add(base(), "n1", year=1999.0).with_removed(["i1"]).save(tmp_path)
    return json.loads((tmp_path / CATALOG_DIR / "catalog.json").read_text(encoding="utf-8"))


def load_edited(tmp_path: Path, record) -> Catalog:
    (tmp_path / CATALOG_DIR / "catalog.json").write_text(json.dumps(record), encoding="utf-8")
    return Catalog.load(tmp_path, dataset(), BASE, "sha")  # type: ignore[arg-type]


def test_a_saved_catalog_reads_back_as_it_was(tmp_path: Path):
    saved(tmp_path)
    catalog = load_edited(tmp_path, json.loads((tmp_path / CATALOG_DIR / "catalog.json").read_text()))
    assert catalog.tokens == ["i0", "i1", "i2", "n1"] and catalog.removed_tokens() == ["i1"]
    assert catalog.added_item(3) == AddedItem("n1", "N1", {"year": 1999.0}, ("graph",))


@pytest.mark.parametrize("record", [[], "a catalog", None], ids=["list", "string", "null"])
def test_a_catalog_json_that_is_no_object_is_refused_naming_the_file(tmp_path: Path, record):
    """A list or a string raised AttributeError ('list' object has no attribute 'get'); ``null``
    was read as "no catalog", so the items added and removed were silently dropped."""
    saved(tmp_path)
    with pytest.raises(RetrievalError, match=r"catalog\.json: not a kgrec catalog"):
        load_edited(tmp_path, record)


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: r.update(added={"n1": {}}),  # not a list
        lambda r: r["added"].__setitem__(0, "n1"),  # an id instead of an item
        lambda r: r["added"][0].pop("item_id"),
        lambda r: r["added"][0].update(item_id=5),
        lambda r: r["added"][0].update(colour="red"),  # a key AddedItem lacks
        lambda r: r["added"][0].update(features=["year"]),
        lambda r: r["added"][0].update(via="graph"),  # a string: its letters were taken for pathways
    ],
    ids=["not-a-list", "a-string", "no-id", "a-number-id", "unknown-key", "features-a-list", "via-a-string"],
)
def test_a_damaged_added_item_is_refused_naming_the_file_and_the_item(tmp_path: Path, damage):
    """These raised TypeError or AttributeError tracebacks (or, for ``via``, read ``"graph"``
    as the pathways g, r, a, p, h)."""
    record = saved(tmp_path)
    damage(record)
    with pytest.raises(RetrievalError, match=r"catalog\.json: .*added.*; remove .*catalog and add the items again"):
        load_edited(tmp_path, record)


@pytest.mark.parametrize("removed", [["zz"], "i1", [1], ["Gamma"]], ids=["unknown", "a-string", "a-number", "a-title"])
def test_a_removed_entry_that_is_no_item_id_of_the_run_is_refused_naming_the_file(tmp_path: Path, removed):
    """An unknown id said "unknown item 'zz'" as a query's NotFoundError (HTTP 404) without
    naming the file; a string was read letter by letter ("unknown item 'i'"); a title removed
    the item that bears it."""
    record = saved(tmp_path)
    record["removed"] = removed
    with pytest.raises(RetrievalError, match=r"catalog\.json: .*removed") as error:
        load_edited(tmp_path, record)
    assert type(error.value) is RetrievalError


def test_an_added_item_that_clashes_with_the_run_names_the_file(tmp_path: Path):
    """An added id that is a trained item's (or twice in the list) said "item 'i0' is already in
    the catalog" on opening the run, as if the user were adding it."""
    record = saved(tmp_path)
    record["added"][0]["item_id"] = "i0"
    with pytest.raises(RetrievalError, match=r"catalog\.json: item 'i0' is already in the catalog; remove .*catalog"):
        load_edited(tmp_path, record)


def test_added_safetensors_without_its_item_vectors_is_refused_naming_the_file(tmp_path: Path):
    from safetensors.numpy import save_file

    saved(tmp_path)
    save_file({"vectors": np.ones((1, DIM), np.float32)}, str(tmp_path / CATALOG_DIR / "added.safetensors"))
    with pytest.raises(RetrievalError, match=r"added\.safetensors: .*remove .*catalog"):
        Catalog.load(tmp_path, dataset(), BASE, "sha")  # type: ignore[arg-type]
