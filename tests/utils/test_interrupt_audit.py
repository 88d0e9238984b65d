"""Audit of ``interruptible``: the call runs in a worker thread, so it must see the caller's
thread-local torch modes."""

from __future__ import annotations

import pytest
import torch

from kgrec.utils.interrupt import abandoned_call_running, interruptible


def test_the_callers_grad_mode_reaches_the_call():
    """torch keeps grad mode per thread: under no_grad the call had built autograd graphs."""
    leaf = torch.ones(3, requires_grad=True)
    with torch.no_grad():
        assert not interruptible(lambda: leaf * 2).requires_grad
    assert interruptible(lambda: leaf * 2).requires_grad  # and grad on stays on
    with torch.no_grad(), torch.enable_grad():
        assert interruptible(torch.is_grad_enabled)


def test_the_callers_inference_mode_reaches_the_call():
    with torch.inference_mode():
        assert interruptible(lambda: torch.ones(2).is_inference())
    assert not interruptible(lambda: torch.ones(2).is_inference())


def test_a_call_that_returned_or_raised_is_not_left_abandoned():
    """Works: only a call that a Ctrl+C left running makes the CLI exit through os._exit."""
    interruptible(sum, [1, 2])
    with pytest.raises(ZeroDivisionError):
        interruptible(lambda: 1 / 0)
    assert not abandoned_call_running()
