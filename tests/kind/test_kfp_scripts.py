"""scripts/kfp (the KFP backend built from a source checkout, Argo from the Go module proxy):
shellcheck and hadolint clean, and the decisions that need neither Go, Docker nor a checkout:
where the version comes from, where builds land, which sources are refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KFP = REPO / "scripts" / "kfp"
BUILD = KFP / "build.sh"
TOOLS = Path(sys.executable).parent
KFP_COMPONENTS = ("api-server", "persistence-agent", "scheduled-workflow", "driver", "launcher")
ARGO_COMPONENTS = ("workflow-controller", "argoexec")
# Built by support-images.sh from Debian's packages and PyPI (no Go).
SUPPORT_IMAGES = ("mariadb", "netcat", "mlmd-server")


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def _pins() -> tuple[str, str]:
    """(KFP version of manifests/kfp, Argo version of scripts/kfp/versions.env)."""
    kustomization = (REPO / "manifests" / "kfp" / "kustomization.yaml").read_text()
    kfp = re.search(r"github\.com/kubeflow/pipelines//\S*\?ref=([^&\s]+)", kustomization)
    argo = re.search(r"^ARGO_WORKFLOWS_VERSION=(\S+)$", (KFP / "versions.env").read_text(), re.M)
    assert kfp and argo
    return kfp.group(1), argo.group(1)


def _fake_source(root: Path, version: str, argo: str) -> Path:
    (root / "backend" / "src" / "apiserver").mkdir(parents=True)
    (root / "VERSION").write_text(version + "\n")
    (root / "go.mod").write_text(
        f"module github.com/kubeflow/pipelines\n\nrequire (\n"
        f"\tgithub.com/argoproj/argo-workflows/v4 {argo}\n)\n"
    )
    return root


def test_kfp_scripts_pass_shellcheck() -> None:
    scripts = sorted(KFP.glob("*.sh"))
    assert BUILD in scripts
    proc = _run(str(TOOLS / "shellcheck"), "--external-sources", *map(str, scripts))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kfp_dockerfiles_pass_hadolint_one_per_image() -> None:
    dockerfiles = sorted(KFP.glob("*.Dockerfile"))
    assert {p.name.removesuffix(".Dockerfile") for p in dockerfiles} == {
        *KFP_COMPONENTS,
        *ARGO_COMPONENTS,
        *SUPPORT_IMAGES,
    }
    proc = _run(str(TOOLS / "hadolint"), "--no-color", *map(str, dockerfiles))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("component", KFP_COMPONENTS + ARGO_COMPONENTS)
def test_builds_land_in_the_cache_under_the_pinned_version(component: str, tmp_path) -> None:
    kfp, argo = _pins()
    version = kfp if component in KFP_COMPONENTS else argo
    proc = _run(str(BUILD), "--bin", component, LANDMARKS_CACHE=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{tmp_path}/kfp/{component}-{version}/bin"
    ref = _run(str(BUILD), "--print-ref", component).stdout.strip()
    assert ref == f"landmarks-kfp/{component}:{version}"
    assert not list(tmp_path.iterdir()), "--bin must build nothing"


def test_an_unknown_component_is_refused_naming_the_known_ones() -> None:
    proc = _run(str(BUILD), "--bin", "ui")
    assert proc.returncode != 0
    assert "unknown component 'ui'" in proc.stderr
    assert all(c in proc.stderr for c in KFP_COMPONENTS + ARGO_COMPONENTS)


def test_a_missing_source_names_how_to_get_one(tmp_path) -> None:
    proc = _run(str(BUILD), "--src", str(tmp_path / "nowhere"), "driver")
    assert proc.returncode != 0
    assert "no KFP source at" in proc.stderr
    assert "KFP_SRC" in proc.stderr and "source" in proc.stderr


def test_a_source_of_another_kfp_version_is_refused(tmp_path) -> None:
    kfp, argo = _pins()
    src = _fake_source(tmp_path / "pipelines", "2.16.0", argo)
    proc = _run(str(BUILD), "driver", KFP_SRC=str(src))
    assert proc.returncode != 0
    assert "is version '2.16.0'" in proc.stderr and f"pins {kfp}" in proc.stderr


def test_a_source_needing_another_argo_fails_until_the_pin_moves(tmp_path) -> None:
    kfp, argo = _pins()
    src = _fake_source(tmp_path / "pipelines", kfp, "v3.7.9")
    proc = _run(str(BUILD), "--src", str(src), "launcher")
    assert proc.returncode != 0
    assert "'v3.7.9'" in proc.stderr and f"pins {argo}" in proc.stderr


@pytest.mark.parametrize(
    ("go_exit", "reason"), [(2, "fake compile error"), (0, "no driver after the build")]
)
def test_a_failed_build_leaves_no_binary_and_keeps_its_log(tmp_path, go_exit, reason) -> None:
    kfp, argo = _pins()
    src = _fake_source(tmp_path / "pipelines", kfp, argo)
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    go = fake_bin / "go"
    # A `go` that fails, or that "succeeds" without writing the binary.
    go.write_text(f"#!/bin/sh\necho fake compile error >&2\nexit {go_exit}\n")
    go.chmod(0o755)
    cache = tmp_path / "cache"
    proc = _run(
        str(BUILD),
        "--src",
        str(src),
        "driver",
        LANDMARKS_CACHE=str(cache),
        PATH=f"{fake_bin}:{os.environ['PATH']}",
    )
    assert proc.returncode != 0
    assert "driver: FAILED" in proc.stderr and "failed: driver" in proc.stderr
    folder = cache / "kfp" / f"driver-{kfp}"
    assert reason in (folder / "build.log").read_text()
    assert not (folder / "bin").exists() and not (folder / "build-seconds").exists()


def test_the_e2e_without_a_checkout_names_kfp_src_before_touching_anything(tmp_path) -> None:
    proc = _run(str(KFP / "e2e.sh"), KFP_SRC=str(tmp_path / "nowhere"))
    assert proc.returncode == 1
    assert f"no KFP checkout at {tmp_path / 'nowhere'}" in proc.stderr
    assert "KFP_SRC=" in proc.stderr
    assert "==>" not in proc.stdout  # no step started


def test_the_offline_install_without_manifests_names_the_checkout(tmp_path) -> None:
    proc = _run(str(KFP / "install.sh"), "render", KFP_SRC=str(tmp_path))
    assert proc.returncode == 1
    assert f"no KFP manifests in {tmp_path}" in proc.stderr


def test_every_upstream_image_of_the_offline_install_has_one_built_here() -> None:
    """install.sh's image map covers the images of upstream's env that the overlay keeps, and
    names only images the scripts build (landmarks-kfp/...)."""
    text = (KFP / "install.sh").read_text()
    block = text[text.index("image_map() {") : text.index("MAP\n}")]
    upstream = re.findall(r"^(\S+) \$\((?:ref|support_ref) ([a-z-]+)\)$", block, re.M)
    assert {name for name, _ in upstream} == {
        "ghcr.io/kubeflow/kfp-api-server",
        "ghcr.io/kubeflow/kfp-persistence-agent",
        "ghcr.io/kubeflow/kfp-scheduled-workflow-controller",
        "quay.io/argoproj/workflow-controller",
        "mysql",
        "docker.io/alpine",
        "gcr.io/tfx-oss-public/ml_metadata_store_server",
    }
    for _, built in upstream:
        script = "support-images.sh" if built in SUPPORT_IMAGES else "build.sh"
        ref = _run(str(KFP / script), "--print-ref", built)
        assert ref.returncode == 0 and ref.stdout.startswith("landmarks-kfp/"), ref.stderr
