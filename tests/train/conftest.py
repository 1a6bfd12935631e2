"""Fixtures of the trainer tests: tiny splits and the trainer run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.train.splits import make_split

# Quiet logs, unbuffered output (read while the process runs), and
# no TF_CONFIG leaking in from the environment.
TRAINER_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONUNBUFFERED": "1",
}


def trainer_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TRAINER_ENV)
    env.update(extra or {})
    return env


RunTrainer = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_trainer() -> RunTrainer:
    """`python -m landmarks.train ARGS` in a real process; returns the finished process."""

    def run(
        args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "landmarks.train", *args],
            env=trainer_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three colour-coded classes, 8 train and 3 validation images each, 32x32."""
    return make_split(tmp_path_factory.mktemp("split") / "split")
