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

from landmarks.tfjob.placement import DEFAULTS_CONFIGMAP, DEFAULTS_KEY

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


def launcher_pod(defaults: dict[str, Any], image: str = "trainer:test") -> dict[str, Any]:
    """A TFJob worker pod as the launcher builds it: the defaults copied in verbatim."""
    container = {"name": "tensorflow", "image": image, **defaults["container"]}
    spec = {
        key: defaults[key]
        for key in (
            "serviceAccountName",
            "automountServiceAccountToken",
            "nodeSelector",
            "tolerations",
            "affinity",
            "securityContext",
            "volumes",
        )
    }
    spec["containers"] = [container]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "job-worker-0", "namespace": defaults["namespace"]},
        "spec": spec,
    }
