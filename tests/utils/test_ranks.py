"""Which process of a multi-process run speaks: rank variables set to 0, empty or unset."""

from __future__ import annotations

import pytest

from kgrec.utils.ranks import RANK_VARIABLES, launched_as_rank_zero


@pytest.mark.parametrize(("value", "speaks"), [(None, True), ("0", True), ("", True), (" ", True), ("1", False)])
def test_a_rank_variable_of_zero_or_nothing_is_the_speaking_process(monkeypatch, value, speaks):
    """``RANK=`` (empty, left by a shell script) names no rank: it muted every note and progress line."""
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if value is not None:
        monkeypatch.setenv("RANK", value)
    assert launched_as_rank_zero() is speaks
