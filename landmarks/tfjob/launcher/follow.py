"""Following a TFJob to its end: the watch on its conditions, the deadline, and SIGTERM.

The watch is resumed after `410 Gone` (its resource version left the API server's window)
and after broken connections, from the job as it is then; transient API errors are retried
with a growing back-off. SIGTERM (KFP cancelling the run, the pod being evicted) raises
`Cancelled`, which the launcher answers by deleting the job.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_any, stop_when_event_set, wait_exponential

from landmarks.errors import LandmarksError
from landmarks.tfjob.launcher.k8s_api import TFJobApi, api_error, short_error, transient
from landmarks.tfjob.launcher.pod_problems import ReplicaStuck
from landmarks.tfjob.launcher.replica_pods import shut
from landmarks.tfjob.results import terminal_condition

log = logging.getLogger(__name__)

_WATCH_SECONDS = 60  # one watch request; the deadline is checked at least this often
_MAX_BACKOFF = 30.0


class Cancelled(LandmarksError):
    """The launcher was told to stop (SIGTERM or Ctrl-C); its job was deleted.

    `exit_code` is the shell's code for death by that signal (143 for SIGTERM), which the
    command line exits with: the pod's status then shows it was stopped, not that it failed.
    """

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class DeadlinePassed(Exception):
    """The launcher's timeout passed while the job was still running."""


class Interrupts:
    """SIGTERM (KFP cancelling the run, the pod being evicted) raises Cancelled, once.

    Later signals are ignored so that they cannot break off the deletion the first one
    started. Inside `deferred()` the signal waits until the block ends: a job whose create
    request is answered must have its uid recorded before Cancelled can delete it.
    """

    def __init__(self) -> None:
        self._deferring = 0
        self._pending: int | None = None
        self._raised = False

    def handler(self, signum: int, frame: Any) -> None:
        if self._raised:
            log.warning("%s again: still deleting the job", signal.Signals(signum).name)
            return
        if self._deferring:
            self._pending = signum
            return
        self._raise(signum)

    def _raise(self, signum: int) -> None:
        self._raised = True
        raise Cancelled(f"stopped by {signal.Signals(signum).name}", signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring and self._pending is not None and not self._raised:
                self._raise(self._pending)


@contextlib.contextmanager
def signals_raise() -> Iterator[Interrupts]:
    """SIGTERM raises Cancelled (see `Interrupts`) while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield Interrupts()  # never installed: nothing to defer
        return
    interrupts = Interrupts()
    previous = signal.signal(signal.SIGTERM, interrupts.handler)
    try:
        yield interrupts
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Past:
    """tenacity stop: the launcher's deadline (time.monotonic()) has passed."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: Any) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


class JobWatch:
    """The watch on one job (`api.uid`) until it ends, is deleted, or is interrupted.

    `report` sees every state of the job; `stuck` says whether the pod tracker found a
    replica stuck, which ends the watch (`interrupt()` closes the open request).
    """

    def __init__(
        self,
        api: TFJobApi,
        *,
        poll_seconds: float,
        report: Callable[[Mapping[str, Any]], None],
        stuck: Callable[[], ReplicaStuck | None],
    ) -> None:
        self.api = api
        self.poll_seconds = poll_seconds
        self._report = report
        self._stuck = stuck
        self._lock = threading.Lock()
        self._resp: Any = None
        self._interrupted = threading.Event()
        # Where the watch is: the job's uid, its latest state, the version to watch from.
        self._uid = ""
        self._current: dict[str, Any] = {}
        self._version = ""

    def follow(
        self, job: Mapping[str, Any], deadline: float | None, resource_version: str | None = None
    ) -> dict[str, Any] | None:
        """Follow the job until it ends (returned) or is deleted (None).

        Raises DeadlinePassed at `deadline` (time.monotonic()) and the `ReplicaStuck` the pod
        tracker found. `resource_version` starts the watch elsewhere than at `job` (tests
        use it to exercise the 410 Gone path).
        """
        self._uid = job["metadata"]["uid"]
        self._current = dict(job)
        self._version = resource_version or job["metadata"]["resourceVersion"]
        # A watch broken by the network or the API server is opened again from the last
        # version seen, after a growing pause; the pause starts afresh once a request ends
        # normally (each `retrying(...)` call is a new series).
        retrying = Retrying(
            retry=retry_if_exception(lambda err: transient(err) and self._stuck() is None),
            wait=wait_exponential(multiplier=self.poll_seconds, max=_MAX_BACKOFF),
            stop=_Past(deadline),
            before_sleep=lambda state: log.info(
                "watch interrupted (%s): watching again",
                short_error(state.outcome.exception()) if state.outcome else "?",
            ),
            reraise=True,
        )
        while True:
            self._report(self._current)
            if terminal_condition(self._current):
                return dict(self._current)
            self._raise_if_stuck()
            if _Past(deadline)(None):
                raise DeadlinePassed
            try:
                ended, final = retrying(self._watch_once, deadline)
            except Exception as err:
                self._raise_if_stuck(err)  # the pod tracker closed the watch
                if transient(err) and _Past(deadline)(None):
                    raise DeadlinePassed from None
                raise
            if ended:
                return final

    def _watch_once(self, deadline: float | None) -> tuple[bool, dict[str, Any] | None]:
        """One watch request: (True, the job) when it ended, (True, None) when it was
        deleted, (False, None) when the request ended first (the caller opens the next).
        """
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        seconds = _WATCH_SECONDS if remaining is None else min(_WATCH_SECONDS, remaining)
        try:
            # The events' objects stay JSON: the TFJob has no generated model class.
            stream = watch.Watch(return_type="object").stream(
                self._open,
                field_selector=f"metadata.name={self.api.name}",
                resource_version=self._version,
                allow_watch_bookmarks=True,
                timeout_seconds=max(1, int(seconds + 0.999)),
                _request_timeout=(10, seconds + 30),
            )
            for event in stream:
                obj = event["raw_object"]
                self._version = obj.get("metadata", {}).get("resourceVersion", self._version)
                if event["type"] == "BOOKMARK":
                    continue
                if event["type"] == "DELETED" or obj["metadata"].get("uid") != self._uid:
                    return True, None
                self._current = obj
                self._report(obj)
                if terminal_condition(obj):
                    return True, dict(obj)
            return False, None
        except ApiException as err:
            self._raise_if_stuck(err)
            if err.status != 410:
                if transient(err):
                    raise
                raise api_error(f"watch tfjobs {self.api.what}", err) from None
        # 410 Gone: the version fell out of the API server's window; start from the job as
        # it is now.
        log.info("watch expired (410 Gone): reading the job again")
        current = self._read_again(deadline)
        if current is None or current["metadata"]["uid"] != self._uid:
            return True, None
        self._current = current
        self._version = current["metadata"]["resourceVersion"]
        return False, None

    def _read_again(self, deadline: float | None) -> dict[str, Any] | None:
        """The job as it is now (None: deleted), retrying transient errors until `deadline`.

        Past the deadline the last transient error is raised, unless the deadline is what
        ends the wait (then DeadlinePassed).
        """
        from kubernetes.client.exceptions import ApiException

        def read() -> dict[str, Any] | None:
            try:
                return self.api.get()
            except ApiException as err:
                if err.status == 404:
                    return None
                if transient(err):
                    raise
                raise api_error(f"get tfjobs {self.api.what}", err) from None

        retrying = Retrying(
            retry=retry_if_exception(transient),
            wait=wait_exponential(multiplier=self.poll_seconds, max=_MAX_BACKOFF),
            stop=stop_any(_Past(deadline), stop_when_event_set(self._interrupted)),
            reraise=True,
        )
        try:
            return retrying(read)
        except Exception as err:
            self._raise_if_stuck(err)
            if transient(err) and _Past(deadline)(None):
                raise DeadlinePassed from None
            raise

    def _raise_if_stuck(self, cause: BaseException | None = None) -> None:
        stuck = self._stuck()
        if stuck is not None:
            raise stuck from None

    def _open(self, *args: Any, **kwargs: Any) -> Any:
        """The watch request, kept so that `interrupt` can close it from another thread."""
        resp = self.api.watch_request(*args, **kwargs)
        with self._lock:
            self._resp = resp
        if self._stuck() is not None:
            shut(resp)  # stuck while this request was on its way
        return resp

    def interrupt(self) -> None:
        """Close the open watch request (from another thread): `follow` then raises."""
        self._interrupted.set()
        with self._lock:
            resp = self._resp
        if resp is not None:
            shut(resp)
