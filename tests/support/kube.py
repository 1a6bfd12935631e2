"""What every suite that talks to a real cluster shares: its kubeconfig and polling."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

KUBECONFIG_ENV = "LANDMARKS_KUBECONFIG"


def kubeconfig_or_skip(how_to_start: str) -> Path:
    """The kubeconfig named by LANDMARKS_KUBECONFIG; the test skips, saying why, without one."""
    path = os.environ.get(KUBECONFIG_ENV)
    if not path:
        pytest.skip(f"{KUBECONFIG_ENV} is not set: {how_to_start}")
    if not Path(path).is_file():
        pytest.skip(f"{KUBECONFIG_ENV}={path} is not a file (is the cluster up?)")
    return Path(path)


def wait_for(
    check: Callable[[], Any], *, what: str, timeout: float = 60.0, interval: float = 0.3
) -> Any:
    """Poll `check` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
