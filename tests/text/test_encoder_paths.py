"""An encoder loaded from a relative folder keeps naming that folder after the working folder
changes: its cache key is the loaded model's, not whatever the relative path names later."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.text import TextEncoder
from kgrec.text.resolve import model_fingerprint


def test_a_relative_model_folder_keeps_its_fingerprint_after_a_chdir(
    tiny_models: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    a, b = (Path(m) for m in tiny_models)
    monkeypatch.chdir(a.parent)
    encoder = TextEncoder(a.name, device="cpu")  # "tiny-a", relative
    assert encoder.source == a
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "tiny-a").mkdir(parents=True)
    for file in b.iterdir():  # another model under the same relative name there
        (elsewhere / "tiny-a" / file.name).write_bytes(file.read_bytes())
    monkeypatch.chdir(elsewhere)
    assert encoder.fingerprint == model_fingerprint(str(a)) != model_fingerprint(str(b))
