"""The build scripts' decisions that need no Docker engine: stand-in names, push refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from landmarks import config
from tests.images.dockerfile import REPO, parse

STANDIN_BASES = REPO / "scripts" / "images" / "standin-bases.sh"
IMAGES_SH = REPO / "scripts" / "deploy" / "images.sh"
TF_STANDIN = "tensorflow-standin.Dockerfile"


def _run(script, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHON": sys.executable, **env},
    )


def test_standins_are_named_for_what_they_are_never_as_the_official_bases() -> None:
    proc = _run(STANDIN_BASES, "--refs")
    assert proc.returncode == 0, proc.stderr
    refs = dict(line.split("=", 1) for line in proc.stdout.split())
    official = parse().global_args
    # Exactly the Dockerfile's base build args, so images.sh can pass them through.
    assert set(refs) == {"PYTHON_IMAGE", "TENSORFLOW_GPU_IMAGE"}
    for arg, ref in refs.items():
        assert ref.startswith("landmarks-standin/"), ref
        assert ref.split(":")[0] != official[arg].split(":")[0]
    # Versions from landmarks.config, the one place.
    assert refs["PYTHON_IMAGE"] == f"landmarks-standin/python:{config.PYTHON_VERSION}-bookworm"
    assert refs["TENSORFLOW_GPU_IMAGE"] == (
        f"landmarks-standin/tensorflow:{config.TENSORFLOW_VERSION}-pypi"
    )


def test_images_built_on_standins_are_never_pushed() -> None:
    # A clean tag, so the -dirty refusal cannot be what stops it.
    proc = _run(
        IMAGES_SH, "--push", "component", BASE_IMAGES="standin", LANDMARKS_IMAGE_TAG="1.2.3"
    )
    assert proc.returncode != 0
    assert "refusing to push images built on stand-in bases" in proc.stderr


def test_an_unknown_base_choice_is_an_error_naming_the_choices() -> None:
    proc = _run(IMAGES_SH, "component", BASE_IMAGES="dockerhub", LANDMARKS_IMAGE_TAG="1.2.3")
    assert proc.returncode != 0
    assert "BASE_IMAGES=dockerhub: expected official" in proc.stderr


def test_image_scripts_pass_shellcheck_and_the_standin_dockerfile_hadolint() -> None:
    tools = Path(sys.executable).parent
    scripts = sorted(str(p) for d in ("images", "ci") for p in (REPO / "scripts" / d).glob("*.sh"))
    assert len(scripts) >= 2
    for command in (
        [str(tools / "shellcheck"), "--external-sources", *scripts],
        [str(tools / "hadolint"), "--no-color", str(STANDIN_BASES.with_name(TF_STANDIN))],
    ):
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False, cwd=REPO
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
