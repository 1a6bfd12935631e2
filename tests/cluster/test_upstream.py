"""The pinned upstream TFJob CRD is found without a running cluster."""

from __future__ import annotations

import yaml

from landmarks import config
from tests.support.upstream import tfjob_crd_path


def test_crd_path_is_the_tfjob_crd_of_the_pinned_operator_release() -> None:
    path = tfjob_crd_path()

    assert f"@{config.TRAINING_OPERATOR_VERSION}" in str(path)
    crd = yaml.safe_load(path.read_text())
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "tfjobs.kubeflow.org"
    served = {v["name"]: v for v in crd["spec"]["versions"] if v["served"]}
    schema = served["v1"]["schema"]["openAPIV3Schema"]
    assert "tfReplicaSpecs" in schema["properties"]["spec"]["properties"]
