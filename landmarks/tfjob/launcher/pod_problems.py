"""Why a replica's pod is not running, and the error raised when that lasts too long."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from landmarks.tfjob.spec import CONTAINER_NAME

# Waiting reasons of a container that cannot start (kubelet: pkg/kubelet/images and
# kuberuntime); the short bound applies to them.
START_ERRORS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


@dataclass(frozen=True)
class PodProblem:
    """Why a replica's pod is not running.

    Attributes:
        reason: The API's reason: `Unschedulable`, `ImagePullBackOff`, `ErrImagePull`,
            `CreateContainerConfigError`, ...
        message: The scheduler's or the kubelet's explanation.
        start_error: The container cannot start (`START_ERRORS`): the short bound applies.
    """

    reason: str
    message: str
    start_error: bool

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason


def pod_problem(pod: Mapping[str, Any]) -> PodProblem | None:
    """What keeps a pod (the API's JSON) from running; None while nothing is wrong yet.

    A container waiting for a reason of `START_ERRORS` (init containers first), or a pod the
    scheduler could not place (condition PodScheduled False). A pod being scheduled, pulling
    its image or creating its container has no problem.
    """
    status = pod.get("status") or {}
    for container in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason in START_ERRORS:
            message = str(waiting.get("message") or "").strip()
            name = container.get("name", "?")
            return PodProblem(reason, f"container {name}: {message or reason}", True)
    if status.get("phase") == "Pending":
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                reason = str(condition.get("reason") or "Unschedulable")
                return PodProblem(reason, str(condition.get("message") or "").strip(), False)
    return None


class ReplicaStuck(Exception):
    """A replica stayed Pending, or could not start its container, past its bound."""

    def __init__(
        self, label: str, problem: PodProblem, seconds: float, bound: float, pod: str = ""
    ) -> None:
        super().__init__(f"{label}: {problem.reason}")
        self.label = label
        self.pod = pod  # the pod's name: what `kubectl describe pod` needs
        self.problem = problem
        self.seconds = seconds
        self.bound = bound


def waiting_problem(pod: Any) -> PodProblem:
    """A Pending pod without a known problem: what its container waits for, if anything."""
    status = container_status(pod)
    waiting = status.state.waiting if status is not None and status.state else None
    if waiting is not None and waiting.reason:
        return PodProblem(str(waiting.reason), str(waiting.message or ""), False)
    return PodProblem("Pending", "", False)


def container_status(pod: Any) -> Any:
    """The trainer container's status in a V1Pod, if it has one yet."""
    if pod is None or pod.status is None:
        return None
    for status in pod.status.container_statuses or []:
        if status.name == CONTAINER_NAME:
            return status
    return None
