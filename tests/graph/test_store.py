import json
from pathlib import Path

import numpy as np
import pytest

from kgrec.data import load_dataset
from kgrec.errors import GraphError, KgrecError
from kgrec.graph import KnowledgeGraph


@pytest.fixture
def saved(build, tmp_path):
    kg = build(attributes=[{"column": "class", "relation": "item.genre"}], inverse=True)
    return kg, kg.save(tmp_path / "graph")


def edit_manifest(folder, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_save_load_round_trip_gives_identical_arrays(saved, toy):
    kg, folder = saved
    assert sorted(p.name for p in folder.parent.iterdir()) == ["graph", "toy"]  # no temporary left
    back = KnowledgeGraph.load(folder, dataset=toy)
    for name in ("head", "relation", "tail", "inverse_of", "node_type"):
        assert np.array_equal(getattr(back, name), getattr(kg, name)), name
    for name in ("names", "keys", "relation_names"):
        assert list(getattr(back, name)) == list(getattr(kg, name)), name
    assert back.counts() == kg.counts() and back.provenance == kg.provenance
    assert back.head.dtype == np.int64


def test_saved_arrays_are_compact_and_not_pickled(saved):
    _, folder = saved
    with np.load(folder / "graph.npz", allow_pickle=False) as npz:
        assert npz["head"].dtype == np.int32 and npz["item_names.utf8"].dtype == np.uint8
        assert npz["item_names.offsets"].dtype == np.int64 and len(npz["item_names.offsets"]) == 6 + 1
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (
        manifest["format_version"] == 2 and manifest["n_items"] == 6 and len(manifest["recipe_sha256"]) == 64
    )
    assert {s["file"] for s in manifest["sources"]} == {"toy.item", "toy.inter", "toy.kg", "toy.link"}


def test_wrong_format_version_is_refused(saved):
    _, folder = saved
    for version in (0, True, "2"):
        edit_manifest(folder, format_version=version)
        with pytest.raises(GraphError, match=f"format version {version}, this kgrec reads versions 1 and 2; rebuild"):
            KnowledgeGraph.load(folder)
    edit_manifest(folder, format_version=99)  # a newer kgrec's: rebuilding with this one is not the only way
    with pytest.raises(GraphError, match=r"format version 99, newer than this kgrec reads \(versions 1 and 2\); upgrade kgrec"):
        KnowledgeGraph.load(folder)


def test_one_long_name_costs_its_own_bytes_not_every_names(build, tmp_path):
    """Version 1 stored names as fixed-width text: one 10,000-character id made every name of
    its kind 40 kB wide (UTF-32), in the file and in memory while saving."""
    kg = build()
    kg.keys = kg.keys.copy()
    kg.keys[kg.n_items] = "e" * 10_000  # an entity's key
    folder = kg.save(tmp_path / "graph")
    with np.load(folder / "graph.npz", allow_pickle=False) as npz:
        assert npz["entity_keys.utf8"].nbytes < 10_000 + 100 * kg.n_entities
    assert KnowledgeGraph.load(folder).keys[kg.n_items] == "e" * 10_000


def test_a_version_1_graph_with_fixed_width_names_still_loads(saved, toy):
    """Graphs and run folders saved before version 2 are read as they are."""
    kg, folder = saved
    with np.load(folder / "graph.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    for name in [n.removesuffix(".utf8") for n in arrays if n.endswith(".utf8")]:
        data, offsets = arrays.pop(f"{name}.utf8").tobytes(), arrays.pop(f"{name}.offsets")
        texts = [data[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        arrays[name] = np.asarray(texts, dtype=str) if texts else np.zeros(0, dtype="<U1")
    np.savez(folder / "graph.npz", **arrays)
    edit_manifest(folder, format_version=1)
    back = KnowledgeGraph.load(folder, dataset=toy)
    for name in ("names", "keys", "relation_names"):
        assert list(getattr(back, name)) == list(getattr(kg, name)), name


def test_names_whose_bytes_and_offsets_do_not_fit_are_refused(saved):
    _, folder = saved
    with np.load(folder / "graph.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["item_keys.offsets"] = arrays["item_keys.offsets"][::-1].copy()
    np.savez(folder / "graph.npz", **arrays)
    with pytest.raises(GraphError, match="array 'item_keys': its bytes and offsets do not fit together"):
        KnowledgeGraph.load(folder)
    del arrays["item_keys.offsets"]
    np.savez(folder / "graph.npz", **arrays)
    with pytest.raises(GraphError, match="array 'item_keys' is missing"):
        KnowledgeGraph.load(folder)


def test_counts_that_do_not_match_the_arrays_are_refused(saved):
    kg, folder = saved
    edit_manifest(folder, counts={**kg.counts(), "triples": kg.n_triples + 1})
    with pytest.raises(GraphError, match="array 'head' has shape"):
        KnowledgeGraph.load(folder)


def test_graph_of_another_dataset_is_refused(saved, atomic):
    _, folder = saved
    other = load_dataset(atomic(name="toy2", inter="user_id:token|item_id:token\nu|x"))
    with pytest.raises(GraphError, match="built from dataset 'toy', not 'toy2'"):
        KnowledgeGraph.load(folder, dataset=other)


def test_changed_source_file_is_refused(saved, toy):
    _, folder = saved
    with open(toy.path / "toy.kg", "a") as handle:
        handle.write("e9\tfilm.film.directed_by\td9\n")
    changed = load_dataset(toy.path)
    with pytest.raises(GraphError, match="not the data of this graph: .*toy.kg changed since"):
        KnowledgeGraph.load(folder, dataset=changed)
    KnowledgeGraph.load(folder, dataset=changed, check_sources=False)  # same items: accepted


def test_missing_folder_or_arrays_are_refused(saved, tmp_path):
    _, folder = saved
    with pytest.raises(GraphError, match="graph folder not found"):
        KnowledgeGraph.load(tmp_path / "nowhere")
    (folder / "graph.npz").unlink()
    with pytest.raises(GraphError, match="graph arrays not found"):
        KnowledgeGraph.load(folder)


def test_a_crash_between_the_two_renames_of_a_save_loads_the_previous_graph(saved, toy):
    import os

    kg, folder = saved
    os.replace(folder, folder.with_name(".graph.old"))  # atomic_dir's first rename, then the crash
    back = KnowledgeGraph.load(folder, dataset=toy)
    assert np.array_equal(back.head, kg.head) and folder.is_dir()


def test_a_save_replaces_an_earlier_graph_and_its_plot_but_nothing_else(saved, tmp_path):
    kg, folder = saved
    (folder / "degrees.png").write_bytes(b"plot")
    assert kg.save(folder) == folder and not (folder / "degrees.png").exists()  # a stale plot goes
    (folder / "degrees.svg").write_bytes(b"plot")  # graph stats --plot writes any image format
    (folder / "degrees.PDF").write_bytes(b"plot")
    assert kg.save(folder) == folder and sorted(p.name for p in folder.iterdir()) == ["graph.npz", "manifest.json"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(GraphError, match="holds 'notes.txt', which the graph would delete"):
        kg.save(folder)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.png").write_bytes(b"cat")  # a picture is a graph's plot only beside a graph
    with pytest.raises(GraphError, match="holds 'cat.png'"):
        kg.save(photos)
    assert (folder / "notes.txt").read_text() == "mine" and (photos / "cat.png").read_bytes() == b"cat"


def test_a_save_to_the_current_folder_is_refused_and_x_dotdot_is_x(saved, tmp_path, monkeypatch):
    """``--out .`` was refused for the temporary folder made inside it; written, the swap would
    delete the folder under the user's shell: refused as such. ``built/x/..`` is ``built``."""
    kg, _ = saved
    here = tmp_path / "built"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(KgrecError, match=r"built: the folder this command runs in"):
        kg.save(".")
    assert list(here.iterdir()) == []
    monkeypatch.chdir(tmp_path)
    assert kg.save(Path("built") / "x" / "..").resolve() == here
    assert sorted(p.name for p in here.iterdir()) == ["graph.npz", "manifest.json"]
    assert KnowledgeGraph.load(here).n_triples == kg.n_triples
