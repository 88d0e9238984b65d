"""``kgrec data import``: long texts, unclosed quotes, Windows line breaks inside a field, and the
command's count of what it wrote (an audit's findings)."""

from __future__ import annotations

import csv

import pytest

from kgrec.cli.main import main
from kgrec.data import load_dataset
from kgrec.data.importer import ImportSpec, import_csv
from kgrec.errors import DataError


def spec(tmp_path, items: str, **kwargs) -> ImportSpec:
    (tmp_path / "r.csv").write_text("user_id,item_id\n1,a\n2,b\n", encoding="utf-8")
    (tmp_path / "items.csv").write_bytes(items.encode("utf-8"))
    return ImportSpec(interactions=tmp_path / "r.csv", items=tmp_path / "items.csv", out=tmp_path / "out" / "mine", **kwargs)


def test_a_text_longer_than_csv_s_default_field_limit_imports(tmp_path):
    """A news article's 200,000 characters were refused as ``malformed CSV: field larger than
    field limit (131072)``, where the same file with ``--sep '::'`` imported."""
    body = "word " * 40_000
    limit = csv.field_size_limit()
    ds = load_dataset(import_csv(spec(tmp_path, f'item_id,body\na,"{body}"\nb,short\n', text_cols=("body",))))
    assert ds.item_features["body"][0] == body.strip()
    assert csv.field_size_limit() == limit  # other CSV readers of the process keep theirs


def test_a_quote_that_never_closes_is_located_at_the_line_it_opens_on(tmp_path):
    """The error named the file's last line, which the unclosed quote had read up to."""
    with pytest.raises(DataError, match=r"items.csv:2: malformed CSV: unexpected end of data: a quote opened on this "
                                        r"line is not closed \(read to line 4\)"):  # fmt: skip
        import_csv(spec(tmp_path, 'item_id,title\na,"Alpha\nb,Beta\nc,Gamma\n', text_cols=("title",)))


def test_a_windows_line_break_inside_a_quoted_field_is_one_space(tmp_path):
    """A CRLF inside a quoted title became two spaces (``two  lines``), in a multi-valued value
    two ``_``; the README says a line break becomes one."""
    items = 'item_id,title,genres\r\na,"two\r\nlines","Film\r\nNoir|Drama"\r\nb,Beta,Drama\r\n'
    ds = load_dataset(import_csv(spec(tmp_path, items, text_cols=("title",), seq_cols=("genres",))))
    assert ds.item_features["title"][0] == "two lines"
    assert list(ds.item_features["genres"][0]) == ["Film_Noir", "Drama"]


def test_the_import_command_reads_the_dataset_once(tmp_path, capsys, monkeypatch):
    """The command loaded the written folder again (and split it) only to count it: on 2M rows
    a seventh of the import's time, and its memory a second time."""
    import kgrec.cli.data
    import kgrec.data.importer

    loads = []
    for module in (kgrec.data.importer, kgrec.cli.data):
        real = module.load_dataset
        monkeypatch.setattr(module, "load_dataset", lambda *a, real=real, **k: loads.append(a) or real(*a, **k))
    (tmp_path / "r.csv").write_text("u,i\n007,a\n7,a\n7,b\n")
    assert main(["data", "import", "--interactions", str(tmp_path / "r.csv"), "--user-col", "u",
                 "--item-col", "i", "--out", str(tmp_path / "ds")]) == 0  # fmt: skip
    assert f"wrote {tmp_path / 'ds'}: 2 users, 2 items, 3 interactions" in capsys.readouterr().out
    assert len(loads) == 1
    assert load_dataset(tmp_path / "ds").users.tolist() == ["007", "7"]  # ids stay strings: 007 is not 7
