"""How a TFJob's end maps to a JobResult: the operator's conditions (a job on a cluster)
and its exit-code rules (a job run as local processes), case by case."""

from __future__ import annotations

import pytest

from landmarks.tfjob.results import (
    TAIL_LINES,
    JobResult,
    ReplicaOutcome,
    conditions,
    container_exit_code,
    job_succeeded,
    restarts_replica,
    terminal_condition,
)


def _replica(kind: str, index: int, code: int | None) -> ReplicaOutcome:
    return ReplicaOutcome(kind, index, exit_code=code)


# -- the result ---------------------------------------------------------------------------------


def test_summary_names_condition_reason_time_message_and_every_replica() -> None:
    replicas = [
        ReplicaOutcome("Chief", 0, exit_code=0),
        ReplicaOutcome("Worker", 0, exit_code=None),
        ReplicaOutcome("Worker", 1, exit_code=137, restarts=2),
    ]
    result = JobResult(False, "BackoffLimitExceeded", "worker-1 kept dying", replicas, 12.345)
    assert result.condition == "Failed"
    assert result.summary() == (
        "Failed (BackoffLimitExceeded) after 12.3s: worker-1 kept dying; "
        "chief-0=0, worker-0=stopped, worker-1=137 (restarted 2x)"
    )


def test_a_successful_result_reads_succeeded() -> None:
    result = JobResult(True, "JobSucceeded", "done", [ReplicaOutcome("Worker", 0, 0)], 1.0)
    assert result.condition == "Succeeded"
    assert result.summary() == "Succeeded (JobSucceeded) after 1.0s: done; worker-0=0"


def test_a_replica_keeps_only_its_last_lines_for_the_failure_message() -> None:
    replica = ReplicaOutcome("Worker", 3)
    replica.tail.extend(f"line {i}" for i in range(TAIL_LINES + 5))
    assert list(replica.tail) == [f"line {i}" for i in range(5, TAIL_LINES + 5)]
    assert (replica.label, replica.exit_code, replica.restarts) == ("worker-3", None, 0)
    # Each replica has a tail of its own.
    assert ReplicaOutcome("Worker", 4).tail == type(replica.tail)()


# -- conditions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "job", [{}, {"status": None}, {"status": {}}, {"status": {"conditions": None}}]
)
def test_a_job_without_status_has_no_conditions_and_has_not_ended(job: dict) -> None:
    assert conditions(job) == []
    assert terminal_condition(job) is None


def test_conditions_come_oldest_first_as_written() -> None:
    listed = [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]
    assert conditions({"status": {"conditions": listed}}) == listed


def test_a_running_job_has_not_ended() -> None:
    job = {
        "status": {
            "conditions": [
                {"type": "Created", "status": "True"},
                {"type": "Running", "status": "True"},
                {"type": "Restarting", "status": "True"},
            ]
        }
    }
    assert terminal_condition(job) is None


def test_a_terminal_condition_that_is_not_true_does_not_end_the_job() -> None:
    job = {"status": {"conditions": [{"type": "Failed", "status": "False"}]}}
    assert terminal_condition(job) is None


@pytest.mark.parametrize("ending", ["Succeeded", "Failed"])
def test_the_latest_true_terminal_condition_is_how_the_job_ended(ending: str) -> None:
    earlier = "Failed" if ending == "Succeeded" else "Succeeded"
    job = {
        "status": {
            "conditions": [
                {"type": "Running", "status": "True"},
                {"type": earlier, "status": "True", "reason": "Earlier"},
                {"type": ending, "status": "True", "reason": "Latest"},
                {"type": "Running", "status": "False"},
            ]
        }
    }
    assert terminal_condition(job) == {"type": ending, "status": "True", "reason": "Latest"}


# -- exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returncode", "exit_code"), [(0, 0), (1, 1), (138, 138), (-9, 137), (-15, 143), (-1, 129)]
)
def test_a_process_killed_by_signal_n_exits_as_a_container_does_128_plus_n(
    returncode: int, exit_code: int
) -> None:
    assert container_exit_code(returncode) == exit_code


@pytest.mark.parametrize(
    ("policy", "code", "restarted"),
    [
        ("ExitCode", 0, False),
        ("ExitCode", 1, False),
        ("ExitCode", 127, False),
        ("ExitCode", 128, True),
        ("ExitCode", 138, True),
        ("ExitCode", 143, True),
        ("OnFailure", 0, False),
        ("OnFailure", 1, True),
        ("OnFailure", 137, True),
        ("Always", 0, False),
        ("Always", 2, True),
        ("Never", 1, False),
        ("Never", 138, False),
        ("", 138, False),
    ],
)
def test_the_operators_restart_rule(policy: str, code: int, restarted: bool) -> None:
    assert restarts_replica(policy, code) is restarted


@pytest.mark.parametrize(
    ("replicas", "policy", "succeeded"),
    [
        # The chief decides, whatever the workers did.
        ([("Chief", 0, 0), ("Worker", 0, 1), ("Worker", 1, None)], "", True),
        ([("Chief", 0, 1), ("Worker", 0, 0)], "", False),
        ([("Chief", 0, None), ("Worker", 0, 0)], "AllWorkers", False),
        # A master is a chief by its old name.
        ([("Worker", 0, 1), ("Master", 0, 0)], "", True),
        ([("Master", 0, 2), ("Worker", 0, 0)], "", False),
        # Without one, worker 0 decides...
        ([("Worker", 0, 0), ("Worker", 1, 1)], "", True),
        ([("Worker", 0, None), ("Worker", 1, 0)], "", False),
        ([("Worker", 0, 1), ("Worker", 1, 0)], "", False),
        # ...or every worker, with successPolicy AllWorkers.
        ([("Worker", 0, 0), ("Worker", 1, 1)], "AllWorkers", False),
        ([("Worker", 0, 0), ("Worker", 1, None)], "AllWorkers", False),
        ([("Worker", 0, 0), ("Worker", 1, 0)], "AllWorkers", True),
        # Neither chief nor worker: nothing can succeed.
        ([("PS", 0, 0), ("Evaluator", 0, 0)], "", False),
        ([], "", False),
    ],
)
def test_the_operators_success_rule(
    replicas: list[tuple[str, int, int | None]], policy: str, succeeded: bool
) -> None:
    outcomes = [_replica(*r) for r in replicas]
    assert job_succeeded(outcomes, policy) is succeeded


def test_success_policy_defaults_to_worker_zero() -> None:
    assert job_succeeded([_replica("Worker", 0, 0), _replica("Worker", 1, 1)]) is True
