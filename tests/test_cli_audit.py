"""The CLI as a user meets it: misspellings answered with the closest name, output in an encoding
that lacks a character, options refused or noted where they would do nothing, help that states
its defaults."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pytest

from kgrec.cli.main import build_parser, main
from tests.conftest import TOY_INTER, TOY_ITEM, TOY_KG, TOY_LINK, write_atomic


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The last stderr line of a command line the parser refuses (status 2)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_misspelt_command_choice_or_option_is_answered_with_the_closest_one(capsys, tmp_path: Path):
    """argparse before Python 3.14 listed every command, and said nothing of a close option."""
    assert "invalid choice: 'recomend', maybe you meant 'recommend'? (choose from 'data'" in parse_error(capsys, "recomend", "run")
    assert "invalid choice: 'bild', maybe you meant 'build'?" in parse_error(capsys, "graph", "bild")
    assert "invalid choice: 'hsnw', maybe you meant 'hnsw'?" in parse_error(capsys, "index", "build", "run", "--kind", "hsnw")
    said = parse_error(capsys, "recommend", "run", "--usr", "196")
    assert said == "kgrec recommend: error: unrecognized arguments: --usr 196 (--usr: maybe you meant --user?)"
    said = parse_error(capsys, "similar", "run", "--item=50", "--jsn")
    assert said == "kgrec similar: error: unrecognized arguments: --jsn (--jsn: maybe you meant --json?)"
    said = parse_error(capsys, "recommend", "run", "--user", "1", "--k", "3")  # was told --liked
    assert said == "kgrec recommend: error: unrecognized arguments: --k 3 (--k: maybe you meant -k?)"
    assert parse_error(capsys, "recommend", "run", "--frobnicate") == "kgrec: error: unrecognized arguments: --frobnicate"
    assert "maybe" not in parse_error(capsys, "recomend-everything-now", "run")


def test_output_in_an_encoding_that_lacks_a_character(tmp_path: Path, monkeypatch, capsys):
    """With PYTHONIOENCODING=ascii or a Latin-1 locale a title such as 'Ålpha' was a
    UnicodeEncodeError traceback (status 1); it is written as a JSON escape, which keeps --json
    output (ensure_ascii=False) valid JSON of the same strings."""
    data = write_atomic(tmp_path, "toy", {"inter": TOY_INTER, "item": TOY_ITEM.replace("Alpha", "Ålpha"),
                                          "kg": TOY_KG, "link": TOY_LINK})  # fmt: skip
    assert main(["graph", "build", "--data", str(data), "--out", str(tmp_path / "g")]) == 0
    capsys.readouterr()
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="ascii", newline="\n")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["graph", "explain", str(tmp_path / "g"), "--from", "i1", "--to", "i2"]) == 0
    print(json.dumps({"title": "Ålpha 🎬 Beta"}, ensure_ascii=False))  # as the query commands write JSON
    stdout.flush()
    first, second = raw.getvalue().decode("ascii").splitlines()
    assert first == "1. \\u00c5lpha -directed_by-> d1 <-directed_by- Beta"
    assert json.loads(second) == {"title": "Ålpha 🎬 Beta"}


def test_a_unicode_output_keeps_its_strict_errors():
    """Only an encoding that lacks characters gets the escape (a UTF-8 one has them all)."""
    from kgrec.cli.main import _escape_unencodable

    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    _escape_unencodable(utf8)
    assert utf8.errors == "strict"


def test_serve_refuses_fewer_than_one_worker(tmp_path: Path, monkeypatch, capsys):
    """--workers 0 or -3 served with one worker, as if nothing were wrong."""
    uvicorn = pytest.importorskip("uvicorn")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("uvicorn started"))
    assert main(["serve", str(tmp_path), "--workers", "0"]) == 2
    assert capsys.readouterr().err == "kgrec: error: --workers must be 1 or more, got 0\n"


def test_serve_with_several_workers_checks_the_run_before_starting_them(tmp_path: Path, monkeypatch, capsys):
    """Each worker opens the run itself: a mistyped run folder was one traceback per worker and a
    server that never answered, where one worker says it in one line (status 2)."""
    uvicorn = pytest.importorskip("uvicorn")
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(args))
    monkeypatch.setenv("KGREC_SERVE_RUN", "unset")  # restored after the test
    missing = tmp_path / "runs" / "ml-100kk"
    assert main(["serve", str(missing), "--workers", "2"]) == 2
    assert started == []
    err = capsys.readouterr().err
    assert err.startswith(f"kgrec: error: {missing}: not a finished kgrec run (no such folder)") and err.count("\n") == 1


def test_search_does_not_take_an_option_it_would_ignore(capsys):
    """search has no batch mode, so no progress bar: it took --no-progress and did nothing with it."""
    assert "unrecognized arguments: --no-progress" in parse_error(capsys, "search", "run", "space", "--no-progress")
    for command in (["recommend", "run", "--all-users"], ["similar", "run", "--all-items"]):
        assert build_parser().parse_args([*command, "--no-progress"]).no_progress


def test_tune_notes_a_search_seed_without_trials(tmp_path: Path, monkeypatch, capsys):
    """--search-seed seeds the random search; with a grid search alone it was dropped without a word."""
    import kgrec.train.tune as tune_module

    seeds = []
    monkeypatch.setattr(tune_module, "tune", lambda *args, seed, **kwargs: seeds.append(seed))
    monkeypatch.setattr(tune_module, "format_result", lambda *args: "table")
    grid = ["tune", "--grid", "train.lr=0.001,0.002", "--config", "none", "--out", str(tmp_path / "tune")]
    assert main([*grid, "--search-seed", "3"]) == 0
    assert "note: --search-seed seeds the random search (--trials N)" in capsys.readouterr().err
    assert main([*grid, "--search-seed", "3", "--trials", "2"]) == 0
    assert main(grid) == 0
    assert "--search-seed" not in capsys.readouterr().err
    assert seeds == [3, 3, 0]


def _options(parser: argparse.ArgumentParser, name: str = "kgrec"):
    """``(command, action)`` of every option of ``parser`` and its subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from _options(subparser, f"{name} {sub}")
        elif action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield name, action


def test_every_option_with_a_default_says_it_in_its_help():
    """graph build --split defaulted to ratio without saying so. (`kgrec data` aside: its own module.)"""
    silent = [
        f"{command} {action.option_strings[0]}"
        for command, action in _options(build_parser())
        if action.default not in (None, False, [], argparse.SUPPRESS) and action.dest != "warm_up"
        and "default" not in (action.help or "") and not command.startswith("kgrec data")
    ]  # fmt: skip
    assert silent == []
