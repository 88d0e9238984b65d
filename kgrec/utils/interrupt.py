"""Long native calls that Ctrl+C can interrupt.

Python runs its SIGINT handler between bytecodes of the main thread, so a Ctrl+C during one long
call into native code (a Cholesky factorisation of a 20k x 20k matrix takes minutes on two
cores) waits until that call returns. :func:`interruptible` runs the call in a worker thread
and waits for it in short slices, so the ``KeyboardInterrupt`` reaches the caller at once; the
abandoned call keeps running in its daemon thread until the process exits, which it does next,
through :func:`exit_if_abandoned`: finalising the interpreter under a native call that is still
running can abort the process (SIGABRT, "terminate called without an active exception") instead
of exiting with the status asked for.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.1
# One event per call started and not returned to its caller, set when the call ends: those left
# after a Ctrl+C are the abandoned ones. (Thread.is_alive cannot tell: a join interrupted by
# Ctrl+C marks the thread stopped while it still runs, CPython bpo-45274.)
_calls: list[threading.Event] = []


def interruptible(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, returning its result or raising its exception, while a Ctrl+C
    in the main thread raises ``KeyboardInterrupt`` at once instead of after the call. The call
    runs in the caller's torch grad and inference modes, which torch keeps per thread."""
    if threading.current_thread() is not threading.main_thread():
        return call(*args, **kwargs)  # signals reach the main thread only: nothing to gain
    outcome: dict[str, Any] = {}
    finished = threading.Event()
    modes = _torch_modes()

    def work() -> None:
        try:
            with modes():
                outcome["value"] = call(*args, **kwargs)
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error
        finally:
            finished.set()

    worker = threading.Thread(target=work, name=f"kgrec-{getattr(call, '__name__', 'call')}", daemon=True)
    _calls.append(finished)  # before the start: a Ctrl+C can arrive before the wait below
    worker.start()
    while not finished.wait(POLL_SECONDS):
        pass
    _calls.remove(finished)  # not reached after a Ctrl+C: the call stays listed, maybe running
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _torch_modes() -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """The caller's torch grad and inference modes, to enter in the worker thread: torch keeps
    them per thread, so under ``torch.no_grad()`` the call had built autograd graphs all the same
    (as if called with grad on), and under ``torch.inference_mode()`` had made ordinary tensors.
    Nothing to carry where torch is not imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        return contextlib.nullcontext
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    @contextlib.contextmanager
    def modes() -> Iterator[None]:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            yield

    return modes


def abandoned_call_running() -> bool:
    """Whether a call that a Ctrl+C abandoned is still running in its worker thread."""
    return not all(finished.is_set() for finished in _calls)


def exit_if_abandoned(status: int) -> None:
    """While an abandoned call still runs, ``os._exit(status)`` after flushing stdout and
    stderr, skipping the interpreter's finalisation that could abort; else return."""
    if abandoned_call_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
