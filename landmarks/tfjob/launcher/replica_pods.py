"""A job's replica pods, followed: what keeps one from running, and their logs.

`ReplicaPods` lists the job's pods every poll in a thread of its own, says in the launcher's
log what keeps a replica from running (`pod_problem`), reports a replica stuck past its bound
(`ReplicaStuck`), and streams every replica's log prefixed `[worker-0] `, across pod restarts
and broken connections, without repeating a line.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from landmarks.tfjob.launcher.k8s_api import (
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
    TFJobApi,
    owned_by,
    short_error,
)
from landmarks.tfjob.launcher.pod_problems import (
    PodProblem,
    ReplicaStuck,
    container_status,
    pod_problem,
    waiting_problem,
)
from landmarks.tfjob.launcher.threads import start_helper
from landmarks.tfjob.results import REPLICA_TYPES, TAIL_LINES, ReplicaOutcome
from landmarks.tfjob.spec import CONTAINER_NAME

log = logging.getLogger(__name__)

_LOG_READ_TIMEOUT = 600  # a replica silent this long gets its log stream reopened
_LOG_QUIET_SECONDS = 1.0  # draining the last lines goes on only while lines keep coming


@dataclass
class _PodRecord:
    label: str
    uids: list[str] = field(default_factory=list)
    node: str | None = None
    pod: Any = None  # the latest V1Pod seen
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=TAIL_LINES)
    )
    problem: PodProblem | None = None  # what the launcher last said was wrong
    pending_since: float | None = None  # time.monotonic() the current pod was first Pending
    start_error_since: float | None = None  # ... first seen unable to start its container
    clock_uid: str | None = None  # the pod those two times are about


# (timestamp of the last line shown, how many lines with that timestamp were shown), per
# (pod uid, restart count): what a reopened log stream skips.
_Printed = dict[tuple[str, int], tuple[tuple[str, int], int]]


class ReplicaPods:
    """The pods of one job (`api.uid`), followed in threads from `start()` to `stop()`."""

    def __init__(
        self,
        api: TFJobApi,
        *,
        emit: Callable[[str], None],
        say: Callable[[str], None],
        poll_seconds: float,
        stream_logs: bool,
        pending_timeout: float | None,
        start_error_timeout: float | None,
        on_stuck: Callable[[ReplicaStuck], None],
    ) -> None:
        self.api = api
        self._emit = emit
        self._say = say
        self.poll_seconds = poll_seconds
        self.stream_logs = stream_logs
        self.pending_timeout = pending_timeout or None
        self.start_error_timeout = start_error_timeout or None
        self._on_stuck = on_stuck
        self.stuck: ReplicaStuck | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pods: dict[str, _PodRecord] = {}
        self._threads: list[threading.Thread] = []
        self._streams: set[Any] = set()
        self._last_line = 0.0

    def start(self) -> None:
        thread = threading.Thread(target=self._track, name="pods", daemon=True)
        start_helper(thread)
        self._threads.append(thread)

    def stop(self, drain: float = 0.0) -> None:
        """Stop following pods; with `drain`, first let the log streams go quiet or end.

        A replica's last lines (a traceback, the final metrics) may still be on their way
        when the job ends: a kubelet closes a finished container's stream once it has sent
        everything, so wait up to `drain` seconds while lines keep coming.
        """
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            with self._lock:
                streaming = bool(self._streams)
                quiet = time.monotonic() - self._last_line
            if not streaming or quiet > _LOG_QUIET_SECONDS:
                break
            time.sleep(0.1)
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for resp in streams:
            # Unblocks the thread reading it (a follow stream may never end by itself).
            shut(resp)
        for thread in self._threads:
            thread.join(timeout=5)

    # -- what the pods are doing ---------------------------------------------------------

    def _record(self, pod: Any) -> _PodRecord:
        labels = pod.metadata.labels or {}
        rtype = labels.get(REPLICA_TYPE_LABEL, "replica")
        label = f"{rtype}-{labels.get(REPLICA_INDEX_LABEL, '?')}"
        with self._lock:
            record = self._pods.setdefault(pod.metadata.name, _PodRecord(label.lower()))
            if pod.metadata.uid not in record.uids:
                record.uids.append(pod.metadata.uid)
            record.pod = pod
            new_node = pod.spec.node_name and pod.spec.node_name != record.node
            if new_node:
                record.node = pod.spec.node_name
        if new_node:
            self._say(f"{record.label} is on node {record.node} (pod {pod.metadata.name})")
        return record

    def _track(self) -> None:
        followed: set[str] = set()
        while not self._stop.is_set():
            try:
                pods = self.api.list_pods()
            except Exception as err:  # a listing that fails is retried at the next tick
                log.debug("listing the job's pods failed: %s", err)
                pods = []
            for pod in pods:
                if pod.metadata.uid is None or pod.metadata.labels is None:
                    continue
                if self.api.uid and not owned_by(pod, self.api.uid):
                    continue  # a previous job's pod of the same name, on its way out
                record = self._record(pod)
                self._check_start(record, pod)
                if self.stream_logs and pod.metadata.name not in followed:
                    followed.add(pod.metadata.name)
                    thread = threading.Thread(
                        target=self._follow_log,
                        args=(pod.metadata.name,),
                        name=f"log-{pod.metadata.name}",
                        daemon=True,
                    )
                    start_helper(thread)
                    self._threads.append(thread)
            self._stop.wait(self.poll_seconds)

    def _check_start(self, record: _PodRecord, pod: Any) -> None:
        """Say what keeps a replica from running, and report it stuck when it lasts too long."""
        now = time.monotonic()
        problem = pod_problem(self.api.core.api_client.sanitize_for_serialization(pod))
        if record.clock_uid != pod.metadata.uid:  # a new pod: its own clocks
            record.clock_uid = pod.metadata.uid
            record.pending_since = record.start_error_since = None
        pending = pod.status is not None and pod.status.phase == "Pending"
        record.pending_since = (record.pending_since or now) if pending else None
        starting = problem is not None and problem.start_error
        record.start_error_since = (record.start_error_since or now) if starting else None
        if problem != record.problem:
            if problem is not None:
                bound = self.start_error_timeout if problem.start_error else self.pending_timeout
                self._say(
                    f"{record.label} is not running: {problem}"
                    + (f" (the job is stopped if this lasts {bound:g}s)" if bound else "")
                )
            elif record.problem is not None:
                self._say(f"{record.label}: {record.problem.reason} is over")
            record.problem = problem
        stuck = None
        if (
            problem is not None
            and record.start_error_since is not None
            and self.start_error_timeout
            and now - record.start_error_since >= self.start_error_timeout
        ):
            stuck = ReplicaStuck(
                record.label,
                problem,
                now - record.start_error_since,
                self.start_error_timeout,
                pod=pod.metadata.name,
            )
        elif (
            record.pending_since is not None
            and self.pending_timeout
            and now - record.pending_since >= self.pending_timeout
        ):
            waiting = problem or waiting_problem(pod)
            stuck = ReplicaStuck(
                record.label,
                waiting,
                now - record.pending_since,
                self.pending_timeout,
                pod=pod.metadata.name,
            )
        if stuck is not None and self.stuck is None:
            self.stuck = stuck
            self._on_stuck(stuck)

    # -- logs ----------------------------------------------------------------------------

    def _follow_log(self, pod_name: str) -> None:
        """Stream one replica's log for as long as the job runs, across pod restarts.

        A stream that breaks is reopened and the lines already shown are skipped (by their
        timestamps), so a reconnect repeats nothing. Errors are not fatal: a pod that has
        not started has no log yet, and some clusters (KWOK) serve none.
        """
        printed: _Printed = {}
        done: set[tuple[str, int]] = set()
        failures = 0
        while not self._stop.is_set():
            with self._lock:
                record = self._pods.get(pod_name)
                pod = record.pod if record else None
            status = container_status(pod)
            if pod is None or status is None or (status.state and status.state.waiting):
                self._stop.wait(self.poll_seconds)
                continue
            key = (pod.metadata.uid, int(status.restart_count or 0))
            if key in done:
                self._stop.wait(self.poll_seconds)
                continue
            assert record is not None
            try:
                ended = self._stream_log(pod_name, record, key, printed)
                failures = 0
            except Exception as err:
                if self._stop.is_set():
                    break  # the stream was shut down because the job ended
                failures += 1
                if failures == 1:
                    log.info("logs of %s are not available yet: %s", record.label, short_error(err))
                self._stop.wait(min(self.poll_seconds * 2**failures, 30))
                continue
            if ended and status.state and status.state.terminated:
                done.add(key)  # that container's log is complete

    def _stream_log(
        self, pod_name: str, record: _PodRecord, key: tuple[str, int], printed: _Printed
    ) -> bool:
        """Print the new lines of one container's log; True when the stream ended by itself."""
        resp = self.api.core.read_namespaced_pod_log(
            pod_name,
            self.api.namespace,
            container=CONTAINER_NAME,
            follow=True,
            timestamps=True,
            _preload_content=False,
            _request_timeout=(10, _LOG_READ_TIMEOUT),
        )
        with self._lock:
            self._streams.add(resp)
        last, shown = printed.get(key, (("", -1), 0))
        skip = shown  # lines with the last timestamp that a reopened stream repeats
        try:
            for raw in _lines(resp):
                if self._stop.is_set():
                    return False
                stamp, text = split_timestamp(raw)
                if stamp is not None:
                    if stamp < last:
                        continue
                    if stamp == last and skip > 0:
                        skip -= 1
                        continue
                    if stamp > last:
                        last, shown, skip = stamp, 0, 0
                    shown += 1
                    printed[key] = (last, shown)
                record.tail.append(text)
                self._emit(f"[{record.label}] {text}")
                self._last_line = time.monotonic()
            return True
        finally:
            with self._lock:
                self._streams.discard(resp)
            with contextlib.suppress(Exception):
                resp.release_conn()

    # -- what they ended with ------------------------------------------------------------

    def outcomes(self, specs: Mapping[str, Any], exits: Mapping[str, int]) -> list[ReplicaOutcome]:
        """Every replica of `specs` with its last exit code (None: stopped or never ended).

        `exits` are the exit codes the operator's events name, by pod; a container's own
        terminated state, where its pod is still there, wins. Restarts count both new pods
        and container restarts.
        """
        with contextlib.suppress(Exception):
            for pod in self.api.list_pods():
                self._record(pod)
        outcomes = []
        for rtype in [t for t in REPLICA_TYPES if t in specs]:
            for index in range(int(specs[rtype].get("replicas", 1))):
                pod_name = f"{self.api.name}-{rtype.lower()}-{index}"
                outcome = ReplicaOutcome(rtype, index, exit_code=exits.get(pod_name))
                with self._lock:
                    record = self._pods.get(pod_name)
                if record is not None:
                    status = container_status(record.pod)
                    terminated = status and status.state and status.state.terminated
                    if terminated:
                        outcome.exit_code = int(terminated.exit_code)
                    outcome.restarts = (
                        len(record.uids) - 1 + int((status.restart_count if status else 0) or 0)
                    )
                    outcome.tail.extend(record.tail)
                outcomes.append(outcome)
        return outcomes

    def unscheduled(self) -> list[str]:
        """`worker-0 not scheduled: <why>` for each replica Pending without a node."""
        notes = []
        with self._lock:
            records = list(self._pods.values())
        for record in records:
            pod = record.pod
            if pod is None or pod.status is None or pod.status.phase != "Pending":
                continue
            for condition in pod.status.conditions or []:
                if condition.type == "PodScheduled" and condition.status != "True":
                    notes.append(f"{record.label} not scheduled: {condition.message}")
        return notes


def shut(resp: Any) -> None:
    """Close a streaming response so that the thread reading it returns at once."""
    with contextlib.suppress(Exception):
        resp.shutdown()
    with contextlib.suppress(Exception):
        resp.close()


def _lines(resp: Any) -> Iterator[str]:
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if buffer:
        yield buffer.decode("utf-8", "replace")


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z ?")


def split_timestamp(line: str) -> tuple[tuple[str, int] | None, str]:
    """`2026-01-01T00:00:00.5Z text` -> ((seconds, nanoseconds), text); no stamp: (None, line)."""
    found = _STAMP.match(line)
    if not found:
        return None, line
    nanos = int((found.group(2) or "0").ljust(9, "0"))
    return (found.group(1), nanos), line[found.end() :]
