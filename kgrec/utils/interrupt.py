"""Long native calls that Ctrl+C can interrupt.

Python runs its SIGINT handler between bytecodes of the main thread, so a Ctrl+C during one long
call into native code (a Cholesky factorisation of a 20k x 20k matrix takes minutes on two
cores) waits until that call returns. :func:`interruptible` runs the call in a worker thread
and waits for it in short slices, so the ``KeyboardInterrupt`` reaches the caller at once; the
abandoned call keeps running in its daemon thread until the process exits, which it does next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.1


def interruptible(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, returning its result or raising its exception, while a Ctrl+C
    in the main thread raises ``KeyboardInterrupt`` at once instead of after the call."""
    if threading.current_thread() is not threading.main_thread():
        return call(*args, **kwargs)  # signals reach the main thread only: nothing to gain
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = call(*args, **kwargs)
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=work, name=f"kgrec-{getattr(call, '__name__', 'call')}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(POLL_SECONDS)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
