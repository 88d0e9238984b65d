"""``kgrec eval-lists`` as a user meets it: a bad file named at its line and column, lists
shorter than K counted and noted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgrec.cli.main import main
from kgrec.data import SplitConfig, load_dataset
from kgrec.errors import DataError
from kgrec.eval.lists import evaluate_lists, read_lists


@pytest.fixture(scope="module")
def dataset(clustered_dataset: Path):
    return load_dataset(clustered_dataset, SplitConfig(seed=5))


GOOD = '{"user": "u0", "items": ["i1"]}\n'


def test_a_line_that_is_not_json_is_named_at_its_own_line_and_column(dataset, tmp_path: Path):
    """json's own "line 1 column N" counts within the one line it was given: the message names
    the file's line and the column in it instead."""
    path = tmp_path / "bad.jsonl"
    path.write_text(GOOD + GOOD.replace("u0", "u1") + '{"user": "u2", "items": ["i1",]}\n', encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_lists(path, dataset)
    assert error.value.line == 3 and str(error.value) == (f"{path}:3: column 31: not JSON (Expecting value); expected JSON "
                                                          'lines, one {"user": ID, "items": [ID, ...]} per user, best first')
    assert "line 1" not in str(error.value)


def test_lines_ending_in_a_bare_carriage_return_are_named_as_such(dataset, tmp_path: Path):
    """An old-Mac file is one line to a JSON-lines reader: "Extra data" alone did not say why."""
    path = tmp_path / "mac.jsonl"
    path.write_bytes((GOOD + GOOD.replace("u0", "u1")).replace("\n", "\r").encode())
    with pytest.raises(DataError, match=r"mac.jsonl:1: column 33: not JSON \(Extra data\); the lines end in a bare "
                                        r"carriage return \(\\r\), as old Mac files do: expected \\n or \\r\\n"):  # fmt: skip
        read_lists(path, dataset)
    path.write_bytes(GOOD.replace("\n", "\r\n").encode() * 1)
    assert list(read_lists(path, dataset).values()) == [[dataset.items.tolist().index("i1")]]  # \r\n is a line end


def test_a_line_that_is_not_utf8_is_named_at_its_line(dataset, tmp_path: Path, capsys):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(GOOD.encode() + '{"user": "u1", "items": ["caf\xe9"]}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"byte 30 is not UTF-8 \(0xe9\): expected a UTF-8 text file") as error:
        read_lists(path, dataset)
    assert error.value.path == path and error.value.line == 2
    assert main(["eval-lists", str(path), "--data", str(dataset.path)]) == 2  # one line, not a traceback
    assert capsys.readouterr().err.startswith(f"kgrec: error: {path}:2: byte 30")


def test_a_folder_is_not_called_missing(dataset, tmp_path: Path):
    with pytest.raises(DataError, match="is a folder: expected a JSON-lines file"):
        read_lists(tmp_path, dataset)


def test_lists_shorter_than_k_are_counted_and_noted(clustered_dataset: Path, tmp_path: Path, capsys):
    """Five-item lists (every item unseen) are short at K=10 and 20; seen items left out make a
    20-item list short at 20 too; the command says so on stderr, as the metrics count the missing
    ranks as misses."""
    dataset = load_dataset(clustered_dataset)
    users = sorted(set(dataset.test.user.tolist()))
    seen = {u: set() for u in users}
    for part in (dataset.train, dataset.valid):
        for u, i in zip(part.user.tolist(), part.item.tolist(), strict=True):
            if u in seen:
                seen[u].add(i)
    unseen = {u: [i for i in range(dataset.n_items) if i not in seen[u]] for u in users}
    lists = {users[0]: unseen[users[0]][:5], users[1]: unseen[users[1]][:20], users[2]: [*sorted(seen[users[2]])[:1], *unseen[users[2]][:19]]}
    metrics = evaluate_lists(dataset, lists)
    assert metrics["short_lists@10"] == 1 and metrics["short_lists@20"] == 2
    path = tmp_path / "lists.jsonl"
    path.write_text("".join(json.dumps({"user": str(dataset.users[u]), "items": [str(dataset.items[i]) for i in items]}) + "\n"
                            for u, items in lists.items()))  # fmt: skip
    assert main(["eval-lists", str(path), "--data", str(clustered_dataset)]) == 0
    err = capsys.readouterr().err
    assert "note: lists with fewer than K items once the left-out ones go: 1 of 3 at K=10, 2 of 3 at K=20" in err
    full = {u: unseen[u][:20] for u in users}
    assert evaluate_lists(dataset, full)["short_lists@20"] == 0
