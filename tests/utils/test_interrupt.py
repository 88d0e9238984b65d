"""``interruptible``: results and errors come back; Ctrl+C does not wait for a native call."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from kgrec.utils.interrupt import interruptible


def test_the_result_and_the_error_come_back():
    assert interruptible(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
    with pytest.raises(ZeroDivisionError):
        interruptible(lambda: 1 / 0)


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_ctrl_c_interrupts_a_native_call_that_would_hold_the_signal_back():
    # One torch call of about a minute on two cores (124 products of 4000 x 4000 matrices) runs in
    # C++, where Python cannot run its SIGINT handler: called directly, Ctrl+C would wait it out
    # (EASE's Cholesky solve is such a call). Through interruptible() the main thread stops at once.
    script = textwrap.dedent(
        """
        import sys
        import torch
        from kgrec.utils.interrupt import abandoned_call_running, exit_if_abandoned, interruptible
        matrix = torch.rand(4000, 4000)

        def native_call():
            print("started", flush=True)  # from inside the call: the main thread waits in the try
            torch.linalg.matrix_power(matrix, 2**62 - 1)

        try:
            interruptible(native_call)
        except KeyboardInterrupt:
            print("interrupted", abandoned_call_running())
            exit_if_abandoned(130)  # sys.exit alone could abort in the interpreter's finalisation (SIGABRT)
            sys.exit(130)
        print("returned", flush=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    child.send_signal(signal.SIGINT)
    try:
        out, _ = child.communicate(timeout=15)  # well before the native call returns
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail("Ctrl+C waited for the native call")
    assert child.returncode == 130 and out.strip() == "interrupted True"  # printed: flushed before exiting
