"""The deploy scripts stop early, with a reason, on what they cannot do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.shell import kubeconfig, run_script, tool_dir
from tests.support.net import free_port


def test_deploy_refuses_an_unknown_values_profile_listing_the_known_ones(tmp_path: Path) -> None:
    proc = run_script(
        "deploy.sh", path_dir=tool_dir(tmp_path, []), home=tmp_path, env={"ENV": "staging"}
    )

    assert proc.returncode == 1
    assert "ENV=staging has no values profile" in proc.stderr
    assert "choose one of: gke kind" in proc.stderr


def test_gke_deploy_needs_the_project_and_the_google_service_account(tmp_path: Path) -> None:
    proc = run_script(
        "deploy.sh",
        path_dir=tool_dir(tmp_path, []),
        home=tmp_path,
        env={"ENV": "gke", "GCP_PROJECT": "p"},
    )

    assert proc.returncode == 1
    assert "ENV=gke needs GCP_PROJECT and GCP_SERVICE_ACCOUNT" in proc.stderr


def test_deploy_settings_are_read_from_env_sh_but_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "env.sh"
    env_file.write_text('export ENV="${ENV:-qa}"\nexport KFP="${KFP:-sometimes}"\n')
    proc = run_script(
        "deploy.sh",
        path_dir=tool_dir(tmp_path, []),
        home=tmp_path,
        env={"LANDMARKS_ENV_FILE": str(env_file), "ENV": "kind"},
    )

    # ENV=kind from the environment beat env.sh's qa; KFP came from env.sh.
    assert proc.returncode == 1
    assert "KFP=sometimes: expected install, offline or skip" in proc.stderr


def test_deploy_stops_at_an_unreachable_cluster_before_changing_anything(
    tmp_path: Path, kubectl_bin: Path
) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    proc = run_script(
        "deploy.sh",
        path_dir=tool_dir(tmp_path, [kubectl_bin, "git"]),
        home=tmp_path,
        env={"ENV": "kind", "KUBECONFIG": str(kubeconfig(tmp_path / "kc", server))},
    )

    assert proc.returncode == 1
    assert f"cannot reach the API server of context 'test-ctx' at {server}" in proc.stderr
    assert "==>" not in proc.stdout  # no step began


def test_undeploy_needs_a_reachable_cluster_too(tmp_path: Path, kubectl_bin: Path) -> None:
    proc = run_script("undeploy.sh", path_dir=tool_dir(tmp_path, [kubectl_bin]), home=tmp_path)

    assert proc.returncode == 1
    assert "no current Kubernetes context" in proc.stderr


def test_images_refuses_to_push_a_dirty_tag(tmp_path: Path) -> None:
    proc = run_script(
        "images.sh",
        "--push",
        "component",
        path_dir=tool_dir(tmp_path, []),
        home=tmp_path,
        env={"LANDMARKS_IMAGE_TAG": "0.1.0-0123456789ab-dirty"},
    )

    assert proc.returncode == 1
    assert "refusing to push images tagged '0.1.0-0123456789ab-dirty'" in proc.stderr


def test_images_names_an_unknown_role(tmp_path: Path) -> None:
    proc = run_script("images.sh", "trainer-tpu", path_dir=tool_dir(tmp_path, []), home=tmp_path)

    assert proc.returncode == 1
    assert "unknown image role 'trainer-tpu'; expected one of component, trainer" in proc.stderr


def test_images_without_a_docker_daemon_stops_before_building(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine")
    proc = run_script(
        "images.sh",
        "component",
        path_dir=tool_dir(tmp_path, [Path(docker)]),
        home=tmp_path,
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"},
    )

    assert proc.returncode == 1
    assert "docker is installed but its daemon is not reachable" in proc.stderr
    assert "building" not in proc.stdout


def test_kind_up_names_docker_and_kind_when_both_are_missing(tmp_path: Path) -> None:
    proc = run_script("kind.sh", "up", path_dir=tool_dir(tmp_path, []), home=tmp_path)

    assert proc.returncode == 1
    assert "missing: docker not found on PATH" in proc.stderr
    assert "missing: kind not found on PATH" in proc.stderr


def test_kind_run_without_the_kind_cluster_points_at_kind_up(
    tmp_path: Path, kubectl_bin: Path
) -> None:
    config = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", context="gke-prod")
    proc = run_script(
        "kind.sh",
        "run",
        path_dir=tool_dir(tmp_path, [kubectl_bin]),
        home=tmp_path,
        env={"KUBECONFIG": str(config)},
    )

    # It never falls back to the current (here: production) context.
    assert proc.returncode == 1
    assert "context 'kind-landmarks' (KUBE_CONTEXT) is not in" in proc.stderr
