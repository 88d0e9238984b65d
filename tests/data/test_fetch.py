import subprocess

import pytest

from kgrec.data import download as fetch_module
from kgrec.data import fetch
from kgrec.errors import FetchError


def test_fetch_extracts_the_five_files_and_is_idempotent(ml100k, monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(ml100k.parent.parent))  # reuse the cached wheel
    target = fetch("ml-100k", tmp_path)
    assert sorted(p.name for p in target.glob("ml-100k.*")) == sorted(fetch_module.ML100K_FILES)

    def no_network(*args, **kwargs):
        raise AssertionError("a second fetch must not run pip")

    monkeypatch.setattr(subprocess, "run", no_network)
    assert fetch("ml-100k", tmp_path) == target


def test_fetch_never_deletes_files_it_did_not_write(ml100k, monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(ml100k.parent.parent))
    target = tmp_path / "ml-100k"
    target.mkdir()
    (target / "ml-100k.inter").write_text("user_id:token\titem_id:token\n")  # not the fetched file: fetched again
    (target / "my-notes.txt").write_text("mine")
    with pytest.raises(FetchError, match="holds 'my-notes.txt', which the download would delete"):
        fetch("ml-100k", tmp_path)
    (target / "my-notes.txt").unlink()
    assert fetch("ml-100k", tmp_path) == target and len((target / "ml-100k.inter").read_text()) > 1000


def test_fetch_refuses_a_wheel_with_the_wrong_checksum(monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path))

    def fake_pip(command, **kwargs):
        dest = command[command.index("--dest") + 1]
        (tmp_path / "downloads").mkdir(exist_ok=True)
        (fetch_module.Path(dest) / fetch_module.RECBOLE_WHEEL).write_bytes(b"not the wheel")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    with pytest.raises(FetchError, match="has sha256 .* expected 9c99482"):
        fetch("ml-100k", tmp_path / "data")
    assert not (tmp_path / "data" / "ml-100k").exists()


def test_failed_download_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path))
    monkeypatch.setattr(
        subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "ERROR: no network")
    )
    with pytest.raises(FetchError, match="could not download recbole==1.2.1 with pip .*: ERROR: no network"):
        fetch("ml-100k", tmp_path / "data")


def test_unknown_dataset_is_refused():
    with pytest.raises(FetchError, match="unknown dataset 'ml-1b' \\(did you mean 'ml-100k'\\?\\)"):
        fetch("ml-1b")
