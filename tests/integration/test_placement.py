"""Where training runs, on a real scheduler: a run's parameters over the chart's values.

The chart is installed with the GPU pool and `training.gpusPerWorker` (tests/integration/
conftest.py); test_launcher shows that a job launched without parameters lands there. Here the
launcher gets the placement a training step builds from the pipeline's `gpus_per_worker` and
`node_selector` parameters, and the kube-scheduler has the last word on where pods go.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from landmarks.tfjob.launcher import run_on_cluster
from landmarks.tfjob.placement import Placement
from tests.integration.conftest import GPU, GPU_POOL, Platform, scripted_job, unique

JOB_NAME_LABEL = "training.kubeflow.org/job-name"


def _run(platform: Platform, runner: Any, core: Any, name: str, placement: Placement) -> list[Any]:
    """Launch a two-worker job as the KFP runner with `placement`; return its pods."""
    manifest = scripted_job(name, workers=2, seconds=1, success_policy="AllWorkers")
    out = io.StringIO()
    result = run_on_cluster(
        manifest,
        api_client=runner,
        namespace=platform.namespace,
        output=out,
        poll_seconds=0.5,
        timeout=90,
        owner=None,
        placement=placement,
    )
    assert result.succeeded, out.getvalue()
    pods = core.list_namespaced_pod(platform.namespace, label_selector=f"{JOB_NAME_LABEL}={name}")
    assert len(pods.items) == 2, [p.metadata.name for p in pods.items]
    return pods.items


def _other_pool(core: Any, platform: Platform) -> str:
    """A node pool other than the chart's GPU pool, or skip."""
    for node in core.list_node().items:
        pool = (node.metadata.labels or {}).get(GPU_POOL[0])
        if node.metadata.name in platform.other_nodes and pool and pool != GPU_POOL[1]:
            return pool
    pytest.skip(f"no node pool besides {GPU_POOL[1]} ({GPU_POOL[0]}) in this cluster")


def test_node_selector_and_zero_gpus_parameters_move_replicas_off_the_charts_pool(
    platform: Platform, runner: Any, core: Any
) -> None:
    pool = _other_pool(core, platform)
    placement = Placement.from_parameters(
        gpus_per_worker=0, node_selector=f"{GPU_POOL[0]}={pool}"
    ).over(Placement.from_task_config(None))

    pods = _run(platform, runner, core, unique("param-pool"), placement)

    for pod in pods:
        assert pod.spec.node_selector == {GPU_POOL[0]: pool}
        assert (pod.spec.containers[0].resources.limits or {}).get(GPU) is None
        node = core.read_node(pod.spec.node_name)
        assert node.metadata.labels[GPU_POOL[0]] == pool, pod.spec.node_name
        # The chart's values the parameters do not touch still apply.
        assert pod.spec.service_account_name == "landmarks-trainer"
        assert any(t.key == GPU for t in pod.spec.tolerations)


def test_gpus_per_worker_parameter_overrides_the_charts_count_on_its_pool(
    platform: Platform, runner: Any, core: Any
) -> None:
    if not platform.gpus:
        pytest.skip("the cluster's GPU pool has no GPUs to request")
    placement = Placement.from_parameters(gpus_per_worker=2)
    pods = _run(platform, runner, core, unique("param-gpus"), placement)
    for pod in pods:
        assert pod.spec.containers[0].resources.limits[GPU] == "2"
        # No node_selector parameter: the chart's pool.
        assert pod.spec.node_selector == {GPU_POOL[0]: GPU_POOL[1]}
        assert pod.spec.node_name in platform.gpu_nodes
