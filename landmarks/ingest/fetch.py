"""Retries around a single fetch attempt: exponential backoff with jitter, `Retry-After`.

Only transient failures (timeouts, connection errors, truncated bodies, 408, 429, 5xx)
are retried. A server's `Retry-After` replaces the computed backoff, capped at
`max_wait` so one host cannot park a worker for an hour.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import tenacity

from landmarks.ingest.sources import FetchError

T = TypeVar("T")


class Aborted(Exception):
    """The run is stopping; a worker waiting to retry gives up at once."""


class Retrier:
    """Runs a callable until it succeeds, fails permanently, or runs out of attempts.

    Args:
        retries: Attempts after the first one.
        backoff: First backoff in seconds; doubles per attempt, plus up to `backoff` of jitter.
        max_wait: Cap on any single wait, the server's `Retry-After` included.
        stop: Set to make waiting workers give up (Ctrl-C, a fatal error elsewhere).
    """

    def __init__(
        self,
        *,
        retries: int,
        backoff: float,
        max_wait: float,
        stop: threading.Event | None = None,
    ) -> None:
        self.retries = retries
        self.max_wait = max_wait
        self.stop = stop or threading.Event()
        self._exponential = tenacity.wait_exponential_jitter(
            multiplier=backoff, max=max_wait, jitter=backoff
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_wait)
        return self._exponential(state)

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Aborted

    def call(self, fn: Callable[[str], T], arg: str) -> T:
        """`fn(arg)`, retried; a final `FetchError` says how many attempts were made."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, FetchError) and e.transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(fn, arg)
        except FetchError as err:
            attempts = retrying.statistics.get("attempt_number", 1)
            if attempts > 1:
                err.detail = f"{err.detail} (after {attempts} attempts)"
            raise
