"""What the kind tests share: the cluster named by LANDMARKS_KIND_CLUSTER and kubectl on it.

Without LANDMARKS_KIND_CLUSTER (or without kubectl and docker on PATH) every test that needs
the cluster skips with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_ENV = "LANDMARKS_KIND_CLUSTER"
TRAINER_ENV = "LANDMARKS_KIND_TRAINER_IMAGE"


@pytest.fixture(scope="module")
def cluster() -> str:
    name = os.environ.get(CLUSTER_ENV)
    if not name:
        pytest.skip(
            f"{CLUSTER_ENV} is not set: name a kind cluster made from the offline node image"
        )
    for tool in ("kubectl", "docker"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH")
    return name


def kubectl(cluster: str, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["kubectl", "--context", f"kind-{cluster}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}"
    return proc.stdout


def get_json(cluster: str, *args: str) -> Any:
    return json.loads(kubectl(cluster, "get", *args, "-o", "json"))
