"""``kgrec data split``: a dataset's parts written as benchmark files, read back as the same split."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kgrec.cli.main import main
from kgrec.data import SplitConfig, load_dataset
from kgrec.data.export import export_split
from kgrec.errors import DataError


def rows(dataset, part: str) -> list[tuple]:
    """A part as sorted (raw user, raw item, rating, timestamp) rows."""
    inter = getattr(dataset, part)
    rating = inter.rating if inter.rating is not None else [None] * len(inter)
    time = inter.timestamp if inter.timestamp is not None else [None] * len(inter)
    return sorted(zip(dataset.users[inter.user].tolist(), dataset.items[inter.item].tolist(), list(rating), list(time),
                      strict=True))  # fmt: skip


@pytest.mark.parametrize("split", [SplitConfig(strategy="ratio", seed=7), SplitConfig(strategy="temporal")])
def test_the_written_split_reads_back_as_the_same_parts_and_side_files(clustered_dataset: Path, tmp_path: Path, split):
    source = load_dataset(clustered_dataset, split)
    out = export_split(source, tmp_path / "clusters")
    again = load_dataset(out)
    assert again.split == "given" and source.split != "given"
    for part in ("train", "valid", "test"):
        assert rows(again, part) == rows(source, part) and len(rows(source, part)) > 0
    assert again.item_features.keys() == source.item_features.keys()
    assert list(map(str, again.item_features["title"])) == list(map(str, source.item_features["title"]))
    assert (out / "clusters.kg").read_bytes() == (clustered_dataset / "clusters.kg").read_bytes()
    assert not (out / "clusters.inter").exists()


def test_ratings_that_are_not_round_in_binary_survive_the_round_trip(atomic, tmp_path: Path):
    data = atomic(inter="user_id:token|item_id:token|rating:float\n"
                        + "".join(f"u{u}|i{i}|{0.1 * (i + 1):.1f}\n" for u in range(4) for i in range(6)))  # fmt: skip
    source = load_dataset(data, SplitConfig(seed=1))
    again = load_dataset(export_split(source, tmp_path / "split" / "toy"))
    for part in ("train", "valid", "test"):
        assert rows(again, part) == rows(source, part)
    assert again.train.rating.dtype == np.float32


def test_a_split_never_replaces_its_source_or_writes_an_empty_part(atomic, clustered_dataset: Path, tmp_path: Path):
    dataset = load_dataset(clustered_dataset)
    for folder in (clustered_dataset, clustered_dataset.parent):  # the dataset's folder, or one that holds it
        with pytest.raises(DataError, match="would replace the folder of the dataset it comes from"):
            export_split(dataset, folder)
    other = tmp_path / "clusters"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds 'notes.txt', which the split would delete"):
        export_split(dataset, other)
    assert (other / "notes.txt").read_text() == "mine"
    again = tmp_path / "again" / "clusters"
    export_split(dataset, again)
    assert export_split(dataset, again) == again.resolve()  # a split written before is replaced
    (again / "notes.txt").write_text("mine too")  # ... but not with a file of the user's beside it
    with pytest.raises(DataError, match="holds 'notes.txt'"):
        export_split(dataset, again)
    assert (again / "notes.txt").read_text() == "mine too" and (again / "clusters.train.inter").exists()
    copy = tmp_path / "copy" / "clusters"  # a copy of the dataset, named as the split would be
    shutil.copytree(clustered_dataset, copy)
    with pytest.raises(DataError, match=r"holds 'clusters.inter'.*which the split would delete"):
        export_split(dataset, copy)
    assert (copy / "clusters.inter").exists()
    two_each = atomic(inter="user_id:token|item_id:token\n" + "".join(f"u{u}|i{i}\n" for u in range(3) for i in range(2)))
    with pytest.raises(DataError, match="the split's valid part is empty"):
        export_split(load_dataset(two_each, SplitConfig(ratios=(1.0, 0.0, 0.0))), two_each.parent / "out")


def test_the_command_writes_the_split_train_uses(clustered_dataset: Path, tmp_path: Path, capsys):
    code = main(["data", "split", "--data", str(clustered_dataset), "--set", "data.seed=3", "--out", str(tmp_path / "clusters")])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"wrote {tmp_path / 'clusters'}: train ") and "seed=3" in out
    expected = load_dataset(clustered_dataset, SplitConfig(seed=3))
    assert rows(load_dataset(tmp_path / "clusters"), "test") == rows(expected, "test")


def test_the_command_loads_no_torch(clustered_dataset: Path, tmp_path: Path):
    """The split is read through kgrec.train's config, whose package exports torch-backed classes
    too: they load on first use, so ``data split`` starts as ``data info`` does (it took 2.3 s
    on a 240-row dataset for torch's import, against 0.8 s)."""
    import subprocess
    import sys

    out = tmp_path / "clusters"
    probe = (f"import sys; from kgrec.cli.main import main; main(['data', 'split', '--data', {str(clustered_dataset)!r}, "
             f"'--out', {str(out)!r}]); print(sorted(m for m in ('torch', 'torch_geometric', 'lightning', 'transformers') "
             "if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [done.stdout.splitlines()[0], "[]"] and done.stdout.startswith(f"wrote {out}")
    assert len(load_dataset(out).test) == len(load_dataset(clustered_dataset, SplitConfig()).test)
