"""The training namespace enforces the restricted Pod Security Standard, and admits the pods
the launcher's TFJobs make: judged by the API server's own PodSecurity admission, not by a
checker of ours.

The replica pods are the ones the training-operator creates from the job the launcher
submits (`tests.charts.helm.replica_pods`), sent with `dryRun=All`: admission runs in full,
nothing is stored.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.charts.helm import launched_job, replica_pods
from tests.integration.conftest import CHART, Platform, helm_values

PSS_LABEL = "pod-security.kubernetes.io/enforce"


@pytest.fixture(scope="module")
def pods(platform: Platform, helm: Callable[..., Any]) -> dict[str, dict[str, Any]]:
    """The launcher's replica pods for the chart exactly as installed in this session."""
    rendered = helm(
        "template", platform.release, str(CHART), "--namespace", "default",
        *helm_values(platform.namespace, platform.gpus),
    )  # fmt: skip
    objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    found = replica_pods(launched_job(objects))
    for pod in found.values():
        pod["metadata"]["namespace"] = platform.namespace
    return found


def _admit(core: Any, namespace: str, pod: dict[str, Any]) -> None:
    core.create_namespaced_pod(namespace, pod, dry_run="All")


def test_the_training_namespace_enforces_restricted(platform: Platform, core: Any) -> None:
    labels = core.read_namespace(platform.namespace).metadata.labels or {}
    assert labels.get(PSS_LABEL) == "restricted"


def test_the_launchers_replica_pods_are_admitted(
    platform: Platform, core: Any, pods: dict[str, dict[str, Any]]
) -> None:
    assert pods, "the launcher's job has no replica"
    for rtype, pod in pods.items():
        try:
            _admit(core, platform.namespace, pod)
        except Exception as err:  # the API server's message says which rule
            pytest.fail(f"{rtype} pod refused by the API server: {getattr(err, 'body', err)}")


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda s, c: c["securityContext"].update(allowPrivilegeEscalation=True),
         "allowPrivilegeEscalation != false"),
        (lambda s, c: c["securityContext"].pop("capabilities"), "unrestricted capabilities"),
        (lambda s, c: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot != true"),
        (lambda s, c: s.update(hostNetwork=True), "host namespaces"),
        (lambda s, c: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
         "restricted volume types"),
    ],
    ids=["privilege-escalation", "capabilities", "run-as-root", "host-network", "host-path"],
)  # fmt: skip
def test_a_pod_that_breaks_a_rule_is_refused_naming_it(
    platform: Platform,
    core: Any,
    pods: dict[str, dict[str, Any]],
    change: Callable[[dict[str, Any], dict[str, Any]], Any],
    rule: str,
) -> None:
    from kubernetes.client.exceptions import ApiException

    pod = copy.deepcopy(next(iter(pods.values())))
    spec = pod["spec"]
    spec.setdefault("volumes", [])
    container = spec["containers"][0]
    change(spec, container)

    with pytest.raises(ApiException) as refused:
        _admit(core, platform.namespace, pod)
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert 'violates PodSecurity "restricted' in message
    assert rule in message
