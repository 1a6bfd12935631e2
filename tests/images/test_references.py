"""Image references: one place (landmarks.config) for make images, make compile and the images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from landmarks import config
from landmarks.errors import LandmarksError
from tests.images.dockerfile import REPO

PRINTER = "import sys; from landmarks.config import main; sys.exit(main(sys.argv[1:]))"


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "checkout"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    _git(repo, "add", "pyproject.toml")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


def _printer(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRINTER, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_clean_checkout_tags_images_with_version_and_commit(checkout: Path) -> None:
    revision = config.git_revision(checkout)

    sha = _git(checkout, "rev-parse", "--short=12", "HEAD")
    assert revision == (sha, False)
    assert config.default_image_tag("0.1.0", revision) == f"0.1.0-{sha}"


def test_uncommitted_or_untracked_changes_mark_the_tag_dirty(checkout: Path) -> None:
    (checkout / "new_module.py").write_text("x = 1\n")
    revision = config.git_revision(checkout)

    assert revision is not None and revision[1]
    assert config.default_image_tag("0.1.0", revision).endswith("-dirty")


def test_outside_a_checkout_root_the_tag_is_the_version_alone(checkout: Path) -> None:
    # A package dir inside someone else's repository must not take that repository's SHA.
    inner = checkout / "venv" / "site-packages"
    inner.mkdir(parents=True)

    assert config.git_revision(inner) is None
    assert config.default_image_tag("0.1.0", None) == "0.1.0"
    assert config.default_image_tag("0.0.0+unknown", None) == "0.0.0-unknown"


def test_an_invalid_tag_from_the_environment_is_refused() -> None:
    with pytest.raises(LandmarksError, match="LANDMARKS_IMAGE_TAG='v1 beta'"):
        config.check_image_tag("v1 beta")
    proc = _printer("value", "tag", LANDMARKS_IMAGE_TAG="-leading-dash")
    assert proc.returncode == 2
    assert "is not a valid image tag" in proc.stderr


def test_references_follow_registry_and_tag_from_the_environment() -> None:
    env = {"LANDMARKS_REGISTRY": "registry.example.org/ml", "LANDMARKS_IMAGE_TAG": "2.0.0-abc"}

    proc = _printer("image", "trainer", **env)
    assert proc.stdout.strip() == "registry.example.org/ml/landmarks-trainer:2.0.0-abc"
    assert config.image("component", "r.example", "1") == "r.example/landmarks-component:1"
    with pytest.raises(ValueError, match="unknown image role 'gpu'"):
        config.image("gpu")


def test_an_empty_registry_variable_means_the_default_registry() -> None:
    # make exports LANDMARKS_REGISTRY to the deploy scripts even when nobody set it.
    proc = _printer("image", "component", LANDMARKS_REGISTRY="", LANDMARKS_IMAGE_TAG="1.0")
    assert proc.stdout.strip() == f"{config.DEFAULT_REGISTRY}/landmarks-component:1.0"


def test_the_trainer_variant_picks_the_cpu_image_for_kind() -> None:
    code = "from landmarks.config import TRAINER_IMAGE; print(TRAINER_IMAGE)"
    env = {**os.environ, "LANDMARKS_IMAGE_TAG": "1.0", "LANDMARKS_TRAINER_VARIANT": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().endswith("/landmarks-trainer-cpu:1.0")

    proc = _printer("value", "trainer-role", LANDMARKS_TRAINER_VARIANT="tpu")
    assert proc.returncode == 2
    assert "LANDMARKS_TRAINER_VARIANT='tpu': expected one of gpu, cpu" in proc.stderr


def test_the_printer_explains_its_usage() -> None:
    proc = _printer("value", "colour")
    assert proc.returncode == 2
    assert (
        "usage: value {version,python,tensorflow,registry,tag,trainer-role,kfp-artifact-secret}"
        in proc.stderr
    )


def test_make_compile_bakes_in_exactly_the_references_make_images_prints(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LANDMARKS_REGISTRY": "registry.example.org/team",
        "LANDMARKS_IMAGE_TAG": "3.1.4-0123456789ab",
    }

    def make(*args: str) -> str:
        # -o: take the venv as built; the test must not reinstall it.
        proc = subprocess.run(
            ["make", "-C", str(REPO), "--no-print-directory", "-o", ".venv/.installed", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    refs = make("images-refs").split()
    make("compile", f"BUILD={tmp_path}")

    assert refs == [
        f"registry.example.org/team/landmarks-{role}:3.1.4-0123456789ab"
        for role in config.IMAGE_ROLES
    ]
    compiled = next(yaml.safe_load_all((tmp_path / "pipeline.yaml").read_text()))
    images = {e["container"]["image"] for e in compiled["deploymentSpec"]["executors"].values()}
    assert images and images <= set(refs)
