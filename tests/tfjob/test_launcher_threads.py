"""SIGTERM reaches the launcher's main thread whichever thread the kernel hands it to.

Python runs signal handlers in the main thread only; a signal the kernel gives a helper thread
(the pod tracker, a log stream) leaves a main thread that waits in a watch request asleep
until the watch's next event. On kind, a deleted launcher pod deleted its TFJob 19 s after
the kubelet's SIGTERM that way (tests/kind/test_launcher_pod.py). The helper threads block
SIGTERM and SIGINT, so the kernel must wake the main thread.

Linux only: the tests signal one thread by its id and read masks from /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client

from landmarks.tfjob.launcher.k8s_api import TFJobApi
from landmarks.tfjob.launcher.replica_pods import ReplicaPods
from landmarks.tfjob.launcher.threads import STOP_SIGNALS, start_helper

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="thread ids and /proc: Linux")

REPO = Path(__file__).resolve().parents[2]

# The launcher's shape: helper threads busy elsewhere, the main thread waiting in a socket
# read (as in a watch request) inside signals_raise. It prints a helper's thread id, then
# exits 143 once Cancelled is raised, or 1 when its 30 s read times out.
CHILD = """
import socket, sys, threading
from landmarks.tfjob.launcher.follow import Cancelled, signals_raise
from landmarks.tfjob.launcher.threads import start_helper

ids, ready, done = [], threading.Event(), threading.Event()

def helper():
    ids.append(threading.get_native_id())
    ready.set()
    done.wait(60)

thread = threading.Thread(target=helper, daemon=True)
start_helper(thread) if sys.argv[1] == "helper" else thread.start()
ready.wait(10)
waiting, _ = socket.socketpair()
waiting.settimeout(30)
with signals_raise():
    print(ids[0], flush=True)
    try:
        waiting.recv(1)
    except Cancelled:
        sys.exit(143)
sys.exit(1)
"""


def _signal_a_helper_thread(start: str, wait: float) -> int | None:
    """Send SIGTERM to the child's helper thread; its exit code within `wait` s, else None."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, start], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        helper_id = int(proc.stdout.readline())
        time.sleep(0.2)  # the main thread is in its read by now
        # kill(2) with a thread's id offers the signal to that thread first.
        os.kill(helper_id, signal.SIGTERM)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_sigterm_given_to_a_helper_thread_wakes_the_waiting_main_thread() -> None:
    assert _signal_a_helper_thread("helper", wait=10) == 143


def test_without_the_mask_the_main_thread_sleeps_through_it() -> None:
    """The control: what the launcher did before, which the test above would catch."""
    assert _signal_a_helper_thread("plain", wait=2) is None


def _mask(thread_id: int) -> set[int]:
    """The signals a thread of this process blocks (SigBlk in /proc)."""
    status = Path(f"/proc/self/task/{thread_id}/status").read_text()
    bits = int(
        next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk")), 16
    )
    return {number for number in range(1, 65) if bits >> (number - 1) & 1}


def test_helper_threads_and_their_own_threads_block_the_stop_signals() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    seen: dict[str, set[int]] = {}

    def grandchild() -> None:
        seen["grandchild"] = set(signal.pthread_sigmask(signal.SIG_BLOCK, []))

    def child() -> None:
        seen["child"] = set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        inner = threading.Thread(target=grandchild)
        inner.start()  # inherits the child's mask
        inner.join(10)

    thread = threading.Thread(target=child)
    start_helper(thread)
    thread.join(10)
    assert seen["child"] >= STOP_SIGNALS and seen["grandchild"] >= STOP_SIGNALS, seen
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the caller's is unchanged


def test_the_pod_tracker_blocks_the_stop_signals() -> None:
    with socket.socket() as probe:  # a port nothing listens on: listings fail, are retried
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = TFJobApi(
        client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{port}")),
        "landmarks-training",
        "job",
    )
    pods = ReplicaPods(
        api,
        emit=lambda line: None,
        say=lambda line: None,
        poll_seconds=0.2,
        stream_logs=True,
        pending_timeout=None,
        start_error_timeout=None,
        on_stuck=lambda stuck: None,
    )
    pods.start()
    try:
        tracker = next(t for t in threading.enumerate() if t.name == "pods")
        assert tracker.native_id is not None
        assert _mask(tracker.native_id) >= {int(s) for s in STOP_SIGNALS}
    finally:
        pods.stop()
