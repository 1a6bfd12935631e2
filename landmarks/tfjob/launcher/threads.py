"""Helper threads that leave SIGTERM and SIGINT to the launcher's main thread.

Python runs a signal's handler in the main thread only, and only once that thread runs
Python code again. The kernel hands a signal sent to the process to any one of its threads
that does not block it. When it lands in a helper thread (the pod tracker, a log stream)
while the main thread waits in a watch request on the TFJob, nothing wakes the main thread:
the handler runs at the watch's next event, seconds to a minute later. Seen on kind: a
launcher pod deleted while its job trained deleted the job 19 s after the kubelet's
SIGTERM, and a pod's grace period (KFP's default 30 s) can end before that, leaving the
job running. Blocked in every helper thread, the signals can only go to the main thread,
whose blocking call they interrupt.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def start_helper(thread: threading.Thread) -> None:
    """Start `thread` with SIGTERM and SIGINT blocked in it (and in the threads it starts).

    A new thread inherits the mask of the thread that starts it, so the mask is set around
    `start()` rather than by the new thread itself, which would leave a window; a signal
    arriving meanwhile waits, pending, until the caller's mask is restored.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: signals reach the main thread only
        thread.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
