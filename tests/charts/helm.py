"""Drives the real `helm` binary against the chart and parses what it renders."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from landmarks.pipeline_steps.training import cluster_manifest, pipeline_step
from landmarks.tfjob.launcher import OwnerPod, launch_manifest
from landmarks.tfjob.placement import (
    DEFAULTS_CONFIGMAP,
    DEFAULTS_KEY,
    parse_defaults,
    replica_pod_templates,
)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "landmarks-platform"
PROFILES = {
    "default": None,
    "gke": CHART / "ci" / "gke-values.yaml",
    "kind": CHART / "ci" / "kind-values.yaml",
}
# Oldest supported (Chart.yaml kubeVersion) and the kind/kubectl version the project pins.
KUBE_VERSIONS = ("1.30", "1.35")
RELEASE = "landmarks"


class HelmFailed(AssertionError):
    """helm exited non-zero; the message carries its output."""


@dataclass(frozen=True)
class Helm:
    """The helm binary from scripts/k8s-tools.sh."""

    binary: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # No kubeconfig: nothing here may reach a cluster, whatever the machine has configured.
        env = {**os.environ, "KUBECONFIG": os.devnull}
        proc = subprocess.run(
            [str(self.binary), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise HelmFailed(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def template(
        self,
        profile: str = "default",
        *,
        values: Sequence[str] = (),
        set_values: Iterable[str] = (),
        set_files: Iterable[str] = (),
        kube_version: str = KUBE_VERSIONS[-1],
    ) -> list[dict[str, Any]]:
        """Renders the chart with a values profile plus overrides; returns the objects."""
        args = ["template", RELEASE, str(CHART), "--kube-version", kube_version]
        args += _value_args(profile, values, set_values, set_files)
        docs = yaml.safe_load_all(self.run(*args).stdout)
        return [doc for doc in docs if doc]

    def lint(
        self, profile: str = "default", *, set_values: Iterable[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSIONS[0]]
        return self.run(*args, *_value_args(profile, (), set_values, ()))

    def notes(self, profile: str = "default", *, set_values: Iterable[str] = ()) -> str:
        """NOTES.txt as `helm install` prints it; a client-side dry run needs no cluster."""
        args = ["install", RELEASE, str(CHART), "--dry-run=client", "--output", "json"]
        release = json.loads(self.run(*args, *_value_args(profile, (), set_values, ())).stdout)
        return release["info"]["notes"]


def _value_args(
    profile: str, values: Sequence[str], set_values: Iterable[str], set_files: Iterable[str]
) -> list[str]:
    args: list[str] = []
    if PROFILES[profile] is not None:
        args += ["-f", str(PROFILES[profile])]
    for path in values:
        args += ["-f", path]
    for item in set_values:
        args += ["--set", item]
    for item in set_files:
        args += ["--set-file", item]
    return args


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one rendered object of `kind` (and `name`); fails if there is not exactly one."""
    hits = [
        obj
        for obj in objects
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)
    ]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, got {len(hits)}"
    return hits[0]


def training_defaults(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The launcher's contract: `defaults.json` of the training-defaults ConfigMap.

    Looked up under the names the launcher reads, so a chart that renamed either fails here.
    """
    cm = find(objects, "ConfigMap", DEFAULTS_CONFIGMAP)
    return json.loads(cm["data"][DEFAULTS_KEY])


# A pipeline's training step on a cluster, as KFP hands the component its parameters.
STEP: dict[str, Any] = {
    "stage": "stage2-resnet50",
    "splits_path": "/tmp/outputs/splits",
    "splits_uri": "minio://mlpipeline/v2/artifacts/run/split/splits",
    "model_path": "/tmp/outputs/model",
    "model_uri": "minio://mlpipeline/v2/artifacts/run/train-stage2/model",
    "executor": "cluster",
    "task_name": "train-stage2",
    "workers": 2,
    "run_id": "0b7c6f0e-1111-4c55-8e0f-123456789abc",
    "kfp_task": "train-stage2",
}


def launched_job(
    objects: list[dict[str, Any]], owner: OwnerPod | None = None, **step: Any
) -> dict[str, Any]:
    """The TFJob the launcher creates for a pipeline's training step on a cluster with this
    chart: the step's manifest as the component builds it, the ConfigMap's defaults laid over
    it by the launcher's own code, short of the API call. `step` overrides `STEP`.
    """
    cm = find(objects, "ConfigMap", DEFAULTS_CONFIGMAP)
    defaults = parse_defaults(cm["data"][DEFAULTS_KEY], source="the chart's ConfigMap")
    training = pipeline_step(**{**STEP, **step})
    manifest = cluster_manifest(training)
    return launch_manifest(
        manifest,
        namespace=manifest["metadata"]["namespace"],
        defaults=defaults,
        placement=training.placement,
        owner=owner,
    )


def replica_pods(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{replica type: pod}`: replica 0's pod as the training-operator creates it from the
    job's template (its metadata and spec, named `<job>-<type>-0`, in the job's namespace).
    """
    pods = {}
    for rtype, template in replica_pod_templates(job).items():
        metadata = dict(template.get("metadata") or {})
        metadata["name"] = f"{job['metadata']['name']}-{rtype.lower()}-0"
        metadata["namespace"] = job["metadata"]["namespace"]
        pods[rtype] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": template["spec"],
        }
    return pods
