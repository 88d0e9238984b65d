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
from kgrec.utils.io import atomic_dir, file_above, replace_refusal, sha256_file, write_json
from kgrec.utils.names import closest

RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
ML100K_MEMBER = "recbole/dataset_example/ml-100k/"
ML100K_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.kg", "ml-100k.link", "ml-100k.user")
RECORD = ".kgrec-fetch.json"
DATASETS = ("ml-100k",)
HOME_REMEDY = "set KGREC_HOME to a folder you can write"


def kgrec_home() -> Path:
    """Cache root: ``$KGREC_HOME``, default (also when it is set but empty) ``~/.cache/kgrec``."""
    return Path(os.environ.get("KGREC_HOME") or Path.home() / ".cache" / "kgrec").expanduser()  # empty: unset


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
    _make_folder(target.parent, "fetch into another folder (--dir)" if directory else HOME_REMEDY)
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
    except (ValueError, KeyError, TypeError):
        return False
    if not isinstance(files, dict):  # a record edited, or written by another version
        return False
    return all((target / f).is_file() and sha256_file(target / f) == files.get(f) for f in ML100K_FILES)


def _download_wheel(cache: Path) -> Path:
    wheel = cache / RECBOLE_WHEEL
    if wheel.is_file() and sha256_file(wheel) == RECBOLE_WHEEL_SHA256:
        return wheel
    _make_folder(cache, HOME_REMEDY)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(cache), "recbole==1.2.1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.is_file():
        raise FetchError(
            f"could not download recbole==1.2.1 with pip (needed for ml-100k): {_pip_failure(result)}; or copy "
            f"{RECBOLE_WHEEL} (`pip download --no-deps recbole==1.2.1` where there is network) into {cache}"
        )
    actual = sha256_file(wheel)
    if actual != RECBOLE_WHEEL_SHA256:
        wheel.unlink()
        raise FetchError(f"{wheel.name} has sha256 {actual}, expected {RECBOLE_WHEEL_SHA256}; removed it")
    return wheel


def _pip_failure(result: subprocess.CompletedProcess[str]) -> str:
    """Why ``pip download`` failed, in one line: the connection it retried (offline, a proxy, a
    certificate), which its last line ("No matching distribution found") does not say; pip
    missing from this Python; else pip's last line."""
    lines = (result.stderr or result.stdout).strip().splitlines()
    broken = [line.split("connection broken by ", 1)[1] for line in lines if "connection broken by " in line]
    if broken:
        reason = broken[-1].strip()
        return f"pip could not reach the package index ({reason}); check the network or the proxy (HTTPS_PROXY)"
    if any("No module named pip" in line for line in lines):
        return f"{sys.executable} has no pip; install it (`{sys.executable} -m ensurepip`)"
    return lines[-1] if lines else f"pip exited with status {result.returncode}"


def _make_folder(folder: Path, remedy: str) -> None:
    """Create ``folder`` with its parents, or raise one line saying why it cannot be (a file on
    its path, no such place, no rights) and ``remedy``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = folder if folder.exists() and not folder.is_dir() else file_above(folder)
        cause = f"{blocker} is a file" if blocker else f"{error.strerror or error}: {error.filename}"
        raise FetchError(f"{folder}: cannot create this folder ({cause}); {remedy}") from None
