"""An isolated $KGREC_HOME per test (the tiny BERT fixtures live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tiny_model(tiny_models: tuple[str, str]) -> str:
    return tiny_models[0]


@pytest.fixture(autouse=True)
def kgrec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own $KGREC_HOME, so caches never leak between tests or into ~/.cache."""
    home = tmp_path / "kgrec-home"
    monkeypatch.setenv("KGREC_HOME", str(home))
    return home
