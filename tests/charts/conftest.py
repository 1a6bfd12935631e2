"""Fixtures of the chart tests: the real helm and kubectl binaries, installed on first use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.charts.helm import Helm


@pytest.fixture(scope="session")
def helm(k8s_bin: Path) -> Helm:
    return Helm(k8s_bin / "helm")


@pytest.fixture(scope="session")
def kubectl(k8s_bin: Path) -> Path:
    return k8s_bin / "kubectl"
