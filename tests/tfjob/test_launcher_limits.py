"""The cluster launcher's bounds and its answer to SIGTERM, without a cluster.

The SIGTERM tests signal this very process (pytest runs tests in the main thread, where
Python delivers signals); tests/integration/test_launcher.py signals a launcher process
that follows a real TFJob.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import signal
import time

import pytest

from landmarks.pipeline_steps.training import cluster_timeout
from landmarks.tfjob import cli
from landmarks.tfjob.launcher import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PENDING_TIMEOUT_SECONDS,
    DEFAULT_START_ERROR_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    Cancelled,
    run_on_cluster,
)
from landmarks.tfjob.launcher.follow import signals_raise


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)  # the handler runs at the next bytecode; this is ample


def test_the_default_timeouts_are_finite_and_image_errors_fail_soonest() -> None:
    assert math.isfinite(DEFAULT_TIMEOUT_SECONDS) and DEFAULT_TIMEOUT_SECONDS > 0
    assert 0 < DEFAULT_START_ERROR_TIMEOUT_SECONDS < DEFAULT_PENDING_TIMEOUT_SECONDS
    assert DEFAULT_PENDING_TIMEOUT_SECONDS < DEFAULT_TIMEOUT_SECONDS
    assert DEFAULT_MAX_ATTEMPTS >= 2  # a retried step gets at least one fresh job
    # Every way in gets them: the function, the command line, a pipeline step.
    defaults = inspect.signature(run_on_cluster).parameters
    assert defaults["timeout"].default == DEFAULT_TIMEOUT_SECONDS
    assert defaults["pending_timeout"].default == DEFAULT_PENDING_TIMEOUT_SECONDS
    assert defaults["start_error_timeout"].default == DEFAULT_START_ERROR_TIMEOUT_SECONDS
    parser = argparse.ArgumentParser()
    cli.add_commands(parser)
    args = parser.parse_args(["run-cluster", "job.yaml"])
    assert (args.timeout, args.pending_timeout, args.start_error_timeout, args.max_attempts) == (
        DEFAULT_TIMEOUT_SECONDS,
        DEFAULT_PENDING_TIMEOUT_SECONDS,
        DEFAULT_START_ERROR_TIMEOUT_SECONDS,
        DEFAULT_MAX_ATTEMPTS,
    )
    # A pipeline's train_timeout_s of 0 (its default) is the launcher's default, not forever.
    assert cluster_timeout(0) == DEFAULT_TIMEOUT_SECONDS
    assert cluster_timeout(5400) == 5400


def test_sigterm_raises_cancelled_once_with_the_exit_code_of_death_by_sigterm() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with signals_raise():
        with pytest.raises(Cancelled, match="stopped by SIGTERM") as raised:
            _sigterm_self()
        assert raised.value.exit_code == 143  # 128 + 15: what KFP shows for a killed step
        # A second SIGTERM must not break off the deletion the first one started.
        _sigterm_self()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_sigterm_while_the_job_is_created_waits_until_its_uid_is_recorded() -> None:
    recorded = []
    with signals_raise() as interrupts:
        with pytest.raises(Cancelled), interrupts.deferred():
            _sigterm_self()
            recorded.append("uid")  # what submit() records before Cancelled may strike
        assert recorded == ["uid"]
