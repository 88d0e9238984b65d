"""Fetch MovieLens-100K with its Freebase KG from the ``recbole==1.2.1`` wheel.

RecBole ships ml-100k in its atomic format inside its wheel on the Python package index
(``recbole/dataset_example/ml-100k/``). We download that wheel with pip (``--no-deps``, never
installing it), check its sha256, and extract the five files. A second call finds the files in
place, checks them against the record written at extraction and touches no network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from kgrec.errors import FetchError
from kgrec.utils.io import atomic_dir, replace_refusal, sha256_file, write_json
from kgrec.utils.names import closest

RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
ML100K_MEMBER = "recbole/dataset_example/ml-100k/"
ML100K_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.kg", "ml-100k.link", "ml-100k.user")
RECORD = ".kgrec-fetch.json"
DATASETS = ("ml-100k",)


def kgrec_home() -> Path:
    """Cache root: ``$KGREC_HOME``, default ``~/.cache/kgrec``."""
    return Path(os.environ.get("KGREC_HOME", Path.home() / ".cache" / "kgrec")).expanduser()


def fetch(name: str, directory: str | Path | None = None) -> Path:
    """Make dataset ``name`` available and return its folder.

    Args:
        name: ``ml-100k`` (the only dataset fetched by name for now).
        directory: parent folder; the dataset lands in ``directory/NAME``. Default
            ``$KGREC_HOME/datasets``.
    """
    if name not in DATASETS:
        raise FetchError(f"unknown dataset '{name}'{closest(name, DATASETS)}: expected one of {', '.join(DATASETS)}")
    target = Path(directory or kgrec_home() / "datasets") / name
    if _is_complete(target):
        return target

    def guard() -> None:
        if refusal := replace_refusal(target, lambda entry: entry in (*ML100K_FILES, RECORD), "the download"):
            raise FetchError(f"{target}: {refusal}; fetch into another folder (--dir)")

    guard()  # before the download
    wheel = _download_wheel(kgrec_home() / "downloads")
    with atomic_dir(target, guard) as tmp, zipfile.ZipFile(wheel) as archive:
        checksums = {}
        for filename in ML100K_FILES:
            data = archive.read(ML100K_MEMBER + filename)
            (tmp / filename).write_bytes(data)
            checksums[filename] = sha256_file(tmp / filename)
        write_json(tmp / RECORD, {"source": RECBOLE_WHEEL, "sha256": RECBOLE_WHEEL_SHA256, "files": checksums})
    return target


def _is_complete(target: Path) -> bool:
    record = target / RECORD
    if not record.is_file():
        return False
    try:
        files = json.loads(record.read_text())["files"]
    except (ValueError, KeyError):
        return False
    return all((target / f).is_file() and sha256_file(target / f) == files.get(f) for f in ML100K_FILES)


def _download_wheel(cache: Path) -> Path:
    wheel = cache / RECBOLE_WHEEL
    if wheel.is_file() and sha256_file(wheel) == RECBOLE_WHEEL_SHA256:
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(cache), "recbole==1.2.1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.is_file():
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise FetchError(
            "could not download recbole==1.2.1 with pip (needed for ml-100k): "
            + (detail[-1] if detail else f"pip exited with status {result.returncode}")
        )
    actual = sha256_file(wheel)
    if actual != RECBOLE_WHEEL_SHA256:
        wheel.unlink()
        raise FetchError(f"{wheel.name} has sha256 {actual}, expected {RECBOLE_WHEEL_SHA256}; removed it")
    return wheel
