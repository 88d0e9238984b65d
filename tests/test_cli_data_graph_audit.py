"""``kgrec data`` and ``kgrec graph`` as a user meets them: an ``--out`` where no folder can be
made, import options that would do nothing, help that states its defaults, split options a
given split leaves aside."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kgrec.cli.main import build_parser, main
from tests.conftest import TOY_INTER, TOY_ITEM, TOY_KG, TOY_LINK, write_atomic


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_atomic(tmp_path, "toy", {"inter": TOY_INTER, "item": TOY_ITEM, "kg": TOY_KG, "link": TOY_LINK})


@pytest.fixture
def ratings(tmp_path: Path) -> Path:
    (tmp_path / "r.csv").write_text("u,i,t\n1,a,1600000000000\n2,a,1600000001000\n2,b,1600000002000\n")
    return tmp_path / "r.csv"


def write_command(kind: str, toy: Path, ratings: Path, out: Path) -> list[str]:
    """The command line of ``kind`` (``split``, ``import``, ``build``) writing the folder ``out``."""
    return {
        "split": ["data", "split", "--data", str(toy), "--config", "none", "--out", str(out)],
        "import": ["data", "import", "--interactions", str(ratings), "--user-col", "u", "--item-col", "i", "--out", str(out)],
        "build": ["graph", "build", "--data", str(toy), "--out", str(out)],
    }[kind]


@pytest.mark.parametrize("kind", ["split", "import"])
def test_an_out_below_a_file_is_one_line_naming_the_file(toy: Path, ratings: Path, kind: str, capsys):
    """`data split` and `data import` with --out FILE/x were a FileExistsError traceback, where
    `graph build` (and the README) name the file in one line."""
    inter = toy / "toy.inter"
    assert main(write_command(kind, toy, ratings, inter / "toy")) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"kgrec: error: {inter}/toy: {inter} is a file, not a folder; give a new or empty folder, "
                        f"or one an earlier {kind} wrote\n")  # fmt: skip
    assert inter.is_file()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made")
@pytest.mark.parametrize("kind", ["split", "import", "build"])
def test_an_out_where_no_folder_can_be_made_is_one_line(toy: Path, ratings: Path, kind: str, capsys):
    """--out /proc/... (or a folder without the rights) was a FileNotFoundError or PermissionError
    traceback from making the folder or its temporary sibling."""
    assert main(write_command(kind, toy, ratings, Path("/proc/kgrec-audit/x"))) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "kgrec: error: /proc/kgrec-audit/x: cannot write the folder there (/proc/kgrec-audit: No such file or "
        "directory); give a folder where one can be made"
    )
    assert main(write_command(kind, toy, ratings, Path("/proc/kgrec-audit"))) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "kgrec: error: /proc/kgrec-audit: cannot write the folder there (No such file or directory); "
        "give a folder where one can be made"
    )


@pytest.mark.parametrize("option", ["--text-cols", "--seq-cols"])
def test_item_columns_without_the_item_file_are_refused(ratings: Path, tmp_path: Path, option: str, capsys):
    """They were dropped without a word: the dataset was written without the titles asked for."""
    command = write_command("import", Path(), ratings, tmp_path / "ds")
    assert main([*command, option, "title"]) == 2
    assert capsys.readouterr().err == (
        f"kgrec: error: {option} title needs --items: item columns are read from the item file (--items FILE.csv), "
        "not from the interactions\n"
    )
    assert not (tmp_path / "ds").exists()


def test_a_time_unit_without_the_time_column_is_refused(ratings: Path, tmp_path: Path, capsys):
    """--time-unit ms without --time-col wrote the dataset without its timestamps, without a word."""
    command = write_command("import", Path(), ratings, tmp_path / "ds")
    assert main([*command, "--time-unit", "ms"]) == 2
    assert capsys.readouterr().err.startswith("kgrec: error: --time-unit ms needs --time-col")
    assert main([*command, "--time-unit", "ms", "--time-col", "t"]) == 0
    assert (tmp_path / "ds" / "ds.inter").read_text().splitlines()[0] == "user_id:token\titem_id:token\ttimestamp:float"


def test_every_data_option_with_a_default_says_it_in_its_help():
    """`data info --split` and `--seed` had no help at all (ratio and 2026 unsaid)."""
    commands = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    data = commands[0].choices["data"]
    silent = [
        f"data {name} {action.option_strings[0]}"
        for sub in data._actions if isinstance(sub, argparse._SubParsersAction)
        for name, parser in sub.choices.items()
        for action in parser._actions
        if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS)
        and "default" not in (action.help or "")
    ]  # fmt: skip
    assert silent == []


def test_graph_build_notes_the_split_options_a_given_split_leaves_aside(tmp_path: Path, capsys):
    """A folder with its own train/valid/test files is used as it is, whatever --split says:
    `kgrec train` notes it, `graph build` built the user edges from the given split without a word."""
    header = "user_id:token|item_id:token"
    given = write_atomic(tmp_path, "given", {"train.inter": f"{header}\nu1|i1\nu1|i2\nu2|i3", "valid.inter": f"{header}\nu1|i3",
                                             "test.inter": f"{header}\nu2|i1"})  # fmt: skip
    (tmp_path / "users.yaml").write_text("kg: false\nusers: true\n")
    command = ["graph", "build", "--data", str(given), "--recipe", str(tmp_path / "users.yaml"), "--out", str(tmp_path / "g")]
    assert main([*command, "--split", "cold_item", "--seed", "3"]) == 0
    assert ("note: given holds its own split (given.train/valid/test.inter), used as it is: --split cold_item, --seed 3 "
            "do not apply\n") in capsys.readouterr().err  # fmt: skip
    assert main(command) == 0
    assert "note:" not in capsys.readouterr().err
