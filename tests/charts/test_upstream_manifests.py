"""manifests/: our kustomize overlays over pinned upstream releases (never copies of them)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from landmarks import config
from tests.charts.helm import KUBE_VERSIONS, REPO

MANIFESTS = REPO / "manifests"
TRAINING_OPERATOR = MANIFESTS / "training-operator" / "kustomization.yaml"
# The Go module of the training-operator: its zip is the tagged source tree, manifests included.
OPERATOR_MODULE = "github.com/kubeflow/training-operator"
REMOTE = re.compile(
    r"^https://github\.com/(?P<repo>[\w.-]+/[\w.-]+)//(?P<path>[^?]+)\?ref=(?P<ref>.+)$"
)


def _remote_resources() -> dict[str, re.Match[str]]:
    found = {}
    for path in sorted(MANIFESTS.rglob("kustomization.yaml")):
        for resource in yaml.safe_load(path.read_text()).get("resources", []):
            if "://" in resource:
                match = REMOTE.match(resource)
                assert match, f"{path}: remote resource {resource!r} is not repo//path?ref=tag"
                found[str(path.relative_to(MANIFESTS))] = match
    return found


def test_every_upstream_reference_is_pinned_to_a_release_tag() -> None:
    remotes = _remote_resources()
    assert set(remotes) == {
        "training-operator/kustomization.yaml",
        "kfp/kustomization.yaml",
        "kfp/cluster-scoped/kustomization.yaml",
    }
    for where, match in remotes.items():
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", match["ref"]), (
            f"{where}: {match['ref']} is not a tag"
        )


def test_training_operator_ref_matches_the_project_pin() -> None:
    match = _remote_resources()["training-operator/kustomization.yaml"]
    assert match["repo"] == "kubeflow/trainer"
    assert match["ref"] == config.TRAINING_OPERATOR_VERSION


def test_kfp_backend_matches_the_sdk_minor_version() -> None:
    sdk_minor = config.KFP_VERSION.rsplit(".", 1)[0]
    for where in ("kfp/kustomization.yaml", "kfp/cluster-scoped/kustomization.yaml"):
        match = _remote_resources()[where]
        assert match["repo"] == "kubeflow/pipelines"
        assert match["ref"].startswith(f"{sdk_minor}."), f"{where}: backend {match['ref']}"


@pytest.fixture(scope="module")
def upstream_operator_manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned release's manifests/ tree, from the Go module proxy (cached by Go)."""
    if shutil.which("go") is None:
        pytest.skip("Go is not installed: the upstream manifests come from the Go module proxy")
    work = tmp_path_factory.mktemp("gomod")
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{OPERATOR_MODULE}@{config.TRAINING_OPERATOR_VERSION}"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GO111MODULE": "on", "GOFLAGS": "-mod=mod"},
        check=False,
    )
    assert proc.returncode == 0, f"go mod download failed:\n{proc.stdout}\n{proc.stderr}"
    return Path(json.loads(proc.stdout)["Dir"]) / "manifests"


def test_training_operator_overlay_runs_only_tfjob(
    upstream_operator_manifests: Path, kubectl: Path, tmp_path: Path
) -> None:
    # kustomize refuses absolute paths, so lay the release beside a copy of our overlay and
    # point the overlay's one remote resource at it; the patches are ours, unchanged.
    shutil.copytree(upstream_operator_manifests, tmp_path / "upstream")
    overlay = yaml.safe_load(TRAINING_OPERATOR.read_text())
    overlay["resources"] = ["upstream/overlays/standalone"]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    proc = subprocess.run(
        [str(kubectl), "kustomize", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    objects: list[dict[str, Any]] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    crds = [obj for obj in objects if obj["kind"] == "CustomResourceDefinition"]
    assert [crd["metadata"]["name"] for crd in crds] == ["tfjobs.kubeflow.org"]
    # Why the apply must be server-side: client-side apply keeps a copy in a 256 KiB annotation.
    assert len(yaml.safe_dump(crds[0])) > 256 * 1024

    (deployment,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "training-operator"
    assert container["args"] == ["--enable-scheme=tfjob"]
    assert re.fullmatch(
        r"ghcr\.io/kubeflow/training-v1/training-operator:v1-[0-9a-f]+", container["image"]
    )
    # The operator will not start without its (initially empty) webhook-cert Secret.
    assert any(
        obj["kind"] == "Secret" and obj["metadata"]["name"] == "training-operator-webhook-cert"
        for obj in objects
    )
    for obj in objects:
        if obj["kind"] != "CustomResourceDefinition":
            kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
