"""What keeps a replica from running, read from pod status as the API server serves it.

The shapes are those of kube-scheduler (condition PodScheduled False, reason Unschedulable)
and of the kubelet (a container waiting with ErrImagePull, ImagePullBackOff,
CreateContainerConfigError, ...), with their messages as Kubernetes 1.3x words them.
"""

from __future__ import annotations

from typing import Any

import pytest

from landmarks.tfjob.launcher import START_ERRORS, PodProblem, pod_problem

SCHEDULED = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-06T01:00:00Z"}
NOT_READY = [
    {"type": "PodReadyToStartContainers", "status": "True"},
    {"type": "Initialized", "status": "True"},
    {
        "type": "Ready",
        "status": "False",
        "reason": "ContainersNotReady",
        "message": "containers with unready status: [tensorflow]",
    },
    {
        "type": "ContainersReady",
        "status": "False",
        "reason": "ContainersNotReady",
        "message": "containers with unready status: [tensorflow]",
    },
    SCHEDULED,
]


def _waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    """A scheduled pod whose `tensorflow` container waits for `reason`."""
    waiting = {"reason": reason} | ({"message": message} if message is not None else {})
    return {
        "metadata": {"name": "job-worker-0", "namespace": "landmarks-training"},
        "status": {
            "phase": "Pending",
            "conditions": NOT_READY,
            "hostIP": "10.128.0.7",
            "startTime": "2026-12-06T01:00:01Z",
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": "tensorflow",
                    "image": "europe-docker.pkg.dev/p/r/trainer:1",
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "lastState": {},
                    "state": {"waiting": waiting},
                }
            ],
        },
    }


UNSCHEDULABLE = {
    "metadata": {"name": "job-worker-1"},
    "status": {
        "phase": "Pending",
        "qosClass": "Burstable",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-12-06T01:00:00Z",
                "reason": "Unschedulable",
                "message": (
                    "0/3 nodes are available: 1 node(s) didn't match Pod's node "
                    "affinity/selector, 2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes "
                    "are available: 1 Preemption is not helpful for scheduling, 2 No "
                    "preemption victims found for incoming pod."
                ),
            }
        ],
    },
}


@pytest.mark.parametrize(
    ("pod", "reason", "start_error", "says"),
    [
        (UNSCHEDULABLE, "Unschedulable", False, "2 Insufficient nvidia.com/gpu"),
        (
            _waiting(
                "ErrImagePull",
                'failed to pull and unpack image "europe-docker.pkg.dev/p/r/trainer:1": failed '
                'to resolve reference "europe-docker.pkg.dev/p/r/trainer:1": '
                "europe-docker.pkg.dev/p/r/trainer:1: not found",
            ),
            "ErrImagePull",
            True,
            "trainer:1: not found",
        ),
        (
            _waiting(
                "ImagePullBackOff",
                'Back-off pulling image "europe-docker.pkg.dev/p/r/trainer:1": ErrImagePull: '
                "failed to pull and unpack image",
            ),
            "ImagePullBackOff",
            True,
            "Back-off pulling image",
        ),
        (
            _waiting("CreateContainerConfigError", 'secret "landmarks-s3" not found'),
            "CreateContainerConfigError",
            True,
            'secret "landmarks-s3" not found',
        ),
        (
            _waiting(
                "InvalidImageName",
                'Failed to apply default image tag "Trainer:1": couldn\'t parse image name',
            ),
            "InvalidImageName",
            True,
            "couldn't parse",
        ),
        # The kubelet gives no message at times: the reason stands for it.
        (_waiting("ErrImagePull"), "ErrImagePull", True, "container tensorflow: ErrImagePull"),
    ],
)
def test_a_replica_that_cannot_run_is_explained(
    pod: dict[str, Any], reason: str, start_error: bool, says: str
) -> None:
    problem = pod_problem(pod)
    assert problem is not None
    assert (problem.reason, problem.start_error) == (reason, start_error)
    assert says in problem.message and says in str(problem)
    if start_error:
        # Which container: a pod may have more than the operator's one.
        assert problem.message.startswith("container tensorflow: ")


def test_an_init_container_that_cannot_start_is_reported_first() -> None:
    pod = _waiting("PodInitializing")
    pod["status"]["initContainerStatuses"] = [
        {
            "name": "fetch-weights",
            "ready": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}},
        }
    ]
    assert pod_problem(pod) == PodProblem(
        "ImagePullBackOff", "container fetch-weights: Back-off pulling", True
    )


@pytest.mark.parametrize(
    "pod",
    [
        # Just created: the scheduler has not looked at it yet.
        {"metadata": {"name": "p"}, "status": {"phase": "Pending", "qosClass": "BestEffort"}},
        {"metadata": {"name": "p"}},
        # Scheduled, the image being pulled or the container created: nothing wrong yet.
        _waiting("ContainerCreating"),
        _waiting("PodInitializing"),
        # Running, and ended: the operator's exit-code policy judges those, not the launcher.
        {
            "status": {
                "phase": "Running",
                "conditions": [SCHEDULED],
                "containerStatuses": [{"name": "tensorflow", "state": {"running": {}}}],
            }
        },
        {
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {"name": "tensorflow", "state": {"terminated": {"exitCode": 1}}}
                ],
            }
        },
    ],
)
def test_a_replica_on_its_way_has_no_problem(pod: dict[str, Any]) -> None:
    assert pod_problem(pod) is None


def test_start_errors_are_the_kubelets_reasons_for_a_container_that_cannot_start() -> None:
    assert {"ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"} <= START_ERRORS
    # Transient states of a healthy start are not among them.
    assert not {"ContainerCreating", "PodInitializing", "CrashLoopBackOff"} & START_ERRORS
