"""How a TFJob ended, in the operator's terms: the result both executors return.

The local executor (`landmarks.tfjob.local_executor`) decides the outcome itself from its processes'
exit codes, by the operator's rules; the cluster launcher (`landmarks.tfjob.launcher`) reads
it from the job's conditions. Both rule sets are here, next to the result they produce.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The operator's order of replica types; lower-cased they are TF_CONFIG's cluster keys.
REPLICA_TYPES = ("Chief", "Master", "PS", "Worker", "Evaluator")
# The conditions that end a job.
TERMINAL_CONDITIONS = ("Succeeded", "Failed")
TAIL_LINES = 40  # a replica's last lines kept for the failure message


@dataclass
class ReplicaOutcome:
    replica_type: str
    index: int
    exit_code: int | None = None  # None: still running when the job ended (then stopped)
    restarts: int = 0
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=TAIL_LINES)
    )

    @property
    def label(self) -> str:
        return f"{self.replica_type.lower()}-{self.index}"


@dataclass
class JobResult:
    """How the job ended, in the operator's terms (condition Succeeded or Failed)."""

    succeeded: bool
    reason: str
    message: str
    replicas: list[ReplicaOutcome]
    seconds: float

    @property
    def condition(self) -> str:
        return "Succeeded" if self.succeeded else "Failed"

    def summary(self) -> str:
        codes = ", ".join(
            f"{r.label}={'stopped' if r.exit_code is None else r.exit_code}"
            + (f" (restarted {r.restarts}x)" if r.restarts else "")
            for r in self.replicas
        )
        return (
            f"{self.condition} ({self.reason}) after {self.seconds:.1f}s: {self.message}; {codes}"
        )


# -- conditions (a job on a cluster) ---------------------------------------------------------


def conditions(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The job's status conditions, oldest first (none when it has no status yet)."""
    return list((job.get("status") or {}).get("conditions") or [])


def terminal_condition(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """The job's Succeeded or Failed condition (the latest True one), if it has ended."""
    for condition in reversed(conditions(job)):
        if condition.get("type") in TERMINAL_CONDITIONS and condition.get("status") == "True":
            return condition
    return None


# -- exit codes (a job run as local processes) -----------------------------------------------


def container_exit_code(returncode: int) -> int:
    """A process's return code as a container's exit code: killed by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def restarts_replica(restart_policy: str, exit_code: int) -> bool:
    """Whether the operator restarts a replica that exited `exit_code` under its policy.

    `ExitCode` restarts on 128 and above (a signal, or the trainer's "lost peer" 138) and
    fails the job on 1..127; `OnFailure` and `Always` restart on any failure; `Never` never.
    """
    if exit_code == 0:
        return False
    if restart_policy == "ExitCode":
        return exit_code >= 128
    return restart_policy in ("OnFailure", "Always")


def job_succeeded(replicas: Iterable[ReplicaOutcome], success_policy: str = "") -> bool:
    """The operator's success rule, given each replica's exit code so far.

    The chief (or master) exited 0; without one, worker 0 exited 0, or every worker did
    with `successPolicy: AllWorkers`.
    """
    by_type: dict[str, list[ReplicaOutcome]] = collections.defaultdict(list)
    for replica in replicas:
        by_type[replica.replica_type].append(replica)
    for leader in ("Chief", "Master"):
        if leader in by_type:
            return by_type[leader][0].exit_code == 0
    workers = by_type.get("Worker", [])
    if not workers:
        return False
    if success_policy == "AllWorkers":
        return all(w.exit_code == 0 for w in workers)
    return workers[0].exit_code == 0
