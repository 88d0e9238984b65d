"""Audit of splits, export and loading: inputs that passed without a word and came out wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.cli.main import main
from kgrec.data import SplitConfig, load_dataset
from kgrec.data.export import export_split
from kgrec.errors import ConfigError, DataError


def test_a_rating_beyond_float32_is_refused_at_its_line(atomic):
    """Ratings are held as float32: 1e39 parsed as a finite float64 and became inf, which the
    finite check (run before the cast) let through, and which an exported split then wrote as
    ``inf`` that no load accepts."""
    data = atomic(inter="user_id:token|item_id:token|rating:float\nu1|a|3\nu1|b|1e39\nu2|a|4\n")
    with pytest.raises(DataError, match=r"toy\.inter:3: column 'rating:float': rating is 1e\+39, beyond the range of a "
                                        r"float32 rating \(\+-3\.4e\+38\): expected a finite number"):  # fmt: skip
        load_dataset(data)
    top = float(np.finfo(np.float32).max)  # float32's largest, written 3.4028235e+38 (above it in float64), loads
    edge = atomic(name="edge", inter="user_id:token|item_id:token|rating:float\n"
                  + "".join(f"u{u}|i{i}|{top if i == 0 else 1}\n" for u in range(3) for i in range(4)))  # fmt: skip
    again = load_dataset(export_split(load_dataset(edge), edge.parent / "out" / "edge"))
    assert again.interactions().rating.max() == np.float32(top)


def test_a_cold_item_split_of_two_items_says_that_no_share_can_work(atomic):
    """Two items with interactions: the split holds out at least two (one valid, one test), so
    every share holds out every item; "lower it" sent the user lowering a share that cannot help."""
    data = atomic(inter="user_id:token|item_id:token\n" + "".join(f"u{u}|i{i}\n" for u in range(3) for i in range(2)))
    with pytest.raises(ConfigError, match=r"needs at least 3 items with interactions \(one for valid, one for test, one "
                                          r"to train on\); this one has 2"):  # fmt: skip
        load_dataset(data, SplitConfig(strategy="cold_item", cold_item_share=0.01))
    many = atomic(name="many", inter="user_id:token|item_id:token\n" + "".join(f"u{u}|i{i}\n" for u in range(3) for i in range(5)))
    with pytest.raises(ConfigError, match=r"cold_item_share 0.95 holds out every item; lower it"):
        load_dataset(many, SplitConfig(strategy="cold_item", cold_item_share=0.95))


@pytest.mark.parametrize("folder", ["null", "NULL", "'quoted'", "trailing "])
def test_data_split_reads_the_folder_named_even_when_it_reads_as_yaml(tmp_path: Path, monkeypatch, capsys, folder):
    """``--data null`` went into the config as ``data.path=null``, read as no path: the split of
    ml-100k (fetched) was written instead of the folder's, without a word; ``'x'`` lost its quotes
    and a trailing space was stripped, naming another folder."""
    root = tmp_path / folder
    root.mkdir()
    (root / f"{folder}.inter").write_text("user_id:token\titem_id:token\n" + "".join(f"u{u}\ti{i}\n" for u in range(3) for i in range(4)))
    monkeypatch.chdir(tmp_path)
    code = main(["data", "split", "--data", folder, "--out", str(tmp_path / "out" / "x")])
    assert code == 0, capsys.readouterr().err
    assert f"({folder}, split ratio" in capsys.readouterr().out
    written = load_dataset(tmp_path / "out" / "x")
    assert sorted(written.users.tolist()) == ["u0", "u1", "u2"] and len(written.train) == 6


@pytest.mark.parametrize("written", [".", "./", "sub/.."])
def test_a_dataset_folder_given_as_dot_is_named_after_the_folder(toy_dataset: Path, monkeypatch, capsys, written):
    """``kgrec data info .`` inside the dataset folder took the name '' from ``.``, looked for
    ``.inter`` and said the folder's files were misnamed (``..`` the same, with '..')."""
    (toy_dataset / "sub").mkdir()
    monkeypatch.chdir(toy_dataset)
    dataset = load_dataset(written)
    assert dataset.name == "toy" and len(dataset.interactions()) == 8
    assert main(["data", "info", written]) == 0 and capsys.readouterr().out.startswith("dataset       toy\n")



def test_data_split_uses_the_config_kgrec_train_finds_by_the_datasets_name(tmp_path: Path, monkeypatch, capsys):
    """`data split` (and `eval-lists`) promise the split `kgrec train` with the same options uses;
    without --config they took the built-in defaults, where train takes scripts/configs/NAME.yaml."""
    root = tmp_path / "mine"
    root.mkdir()
    rows = "".join(f"u{u}\ti{i}\t{u * 10 + i}\n" for u in range(4) for i in range(5))
    (root / "mine.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + rows)
    (tmp_path / "scripts" / "configs").mkdir(parents=True)
    (tmp_path / "scripts" / "configs" / "mine.yaml").write_text("data:\n  split: temporal\n")
    monkeypatch.chdir(tmp_path)
    assert main(["data", "split", "--data", "mine", "--out", str(tmp_path / "out" / "mine")]) == 0
    captured = capsys.readouterr()
    assert "config: scripts/configs/mine.yaml (the dataset's, found by its name" in captured.err
    assert "split temporal" in captured.out, captured.out
    assert main(["data", "split", "--data", "mine", "--config", "none", "--out", str(tmp_path / "out2" / "mine")]) == 0
    assert "split ratio" in capsys.readouterr().out
    from kgrec.train.config import SOURCE_CONFIGS, find_config_file

    (tmp_path / "ml-100k").mkdir()
    monkeypatch.chdir(tmp_path / "ml-100k")  # "." names its folder, so kgrec's own ml-100k config is found by name
    assert find_config_file(["data.path=."]) == SOURCE_CONFIGS / "ml-100k.yaml"
