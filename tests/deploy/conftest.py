"""Fixtures of the deploy tests: a KFP API on 127.0.0.1, a compiled pipeline, the real tools."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.kfp_api_server import KfpApiServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def kfp_api() -> Iterator[KfpApiServer]:
    with KfpApiServer() as server:
        yield server
    # A request kfp-server-api does not describe fails the test even where the code under
    # test swallowed the error answer.
    assert server.state.refusals == [], server.state.refusals


@pytest.fixture(scope="session")
def compiled_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.compile import compile_pipeline

    return compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")


def write_variant(
    source: Path, target: Path, *, description: str | None = None, platform: dict | None = None
) -> Path:
    """A copy of a compiled pipeline with another description and/or a platform spec."""
    docs = [doc for doc in yaml.safe_load_all(source.read_text()) if doc]
    if description is not None:
        docs[0]["pipelineInfo"]["description"] = description
    if platform is not None:
        docs = [docs[0], platform]
    target.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return target


@pytest.fixture(scope="session")
def kubectl_bin(k8s_bin: Path) -> Path:
    """The pinned kubectl of scripts/k8s-tools.sh (installed once per machine)."""
    return k8s_bin / "kubectl"
