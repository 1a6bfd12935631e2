"""values.schema.json rejects bad values before anything renders, naming the field."""

from __future__ import annotations

import pytest

from tests.charts.helm import Helm, HelmFailed

GSA = "trainer@p-123456.iam.gserviceaccount.com"

# (case, --set values, text the error must contain: the field's path, then the reason)
BAD_VALUES = [
    ("wrong type", ["training.gpusPerWorker=two"], "'/training/gpusPerWorker': got string"),
    ("negative gpus", ["training.gpusPerWorker=-1"], "'/training/gpusPerWorker': minimum"),
    ("unknown auth mode", ["gcp.auth=oauth"], "'/gcp/auth': value must be one of"),
    (
        "workload identity without service account",
        ["gcp.auth=workloadIdentity"],
        "'/gcp/workloadIdentity/gcpServiceAccount': minLength",
    ),
    (
        "workload identity with a malformed service account",
        ["gcp.auth=workloadIdentity", "gcp.workloadIdentity.gcpServiceAccount=trainer"],
        "'/gcp/workloadIdentity/gcpServiceAccount': 'trainer' does not match pattern",
    ),
    ("key secret without a key source", ["gcp.auth=keySecret"], "'/gcp/keySecret'"),
    (
        "key secret with two key sources",
        ["gcp.auth=keySecret", "gcp.keySecret.existingSecret=k", "gcp.keySecret.keyFile={}"],
        "'/gcp/keySecret/existingSecret': value must be ''",
    ),
    ("misspelt key", ["training.gpusPerWokrer=1"], "additional properties 'gpusPerWokrer'"),
    ("bad namespace name", ["namespace.name=Landmarks_Training"], "'/namespace/name'"),
    (
        "root training pods",
        ["training.podSecurityContext.runAsNonRoot=false"],
        "'/training/podSecurityContext/runAsNonRoot': value must be true",
    ),
    (
        "privilege escalation",
        ["training.containerSecurityContext.allowPrivilegeEscalation=true"],
        "'/training/containerSecurityContext/allowPrivilegeEscalation': value must be false",
    ),
    (
        "capabilities kept",
        ["training.containerSecurityContext.capabilities.drop={NET_RAW}"],
        "'/training/containerSecurityContext/capabilities/drop'",
    ),
    (
        "unconfined seccomp",
        ["training.podSecurityContext.seccompProfile.type=Unconfined"],
        "'/training/podSecurityContext/seccompProfile/type'",
    ),
    ("bad gpu resource name", ["training.gpuResourceName=gpu"], "'/training/gpuResourceName'"),
    (
        "bad toleration effect",
        ["training.tolerations[0].effect=Never"],
        "'/training/tolerations/0/effect'",
    ),
]


@pytest.mark.parametrize(
    ("set_values", "message"),
    [case[1:] for case in BAD_VALUES],
    ids=[case[0] for case in BAD_VALUES],
)
def test_template_rejects_bad_values_naming_the_field(
    helm: Helm, set_values: list[str], message: str
) -> None:
    with pytest.raises(HelmFailed) as failed:
        helm.template(set_values=set_values)
    assert "don't meet the specifications of the schema" in str(failed.value)
    assert message in str(failed.value)


def test_lint_rejects_bad_values_too(helm: Helm) -> None:
    with pytest.raises(HelmFailed, match="'/gcp/workloadIdentity/gcpServiceAccount'"):
        helm.lint("gke", set_values=["gcp.workloadIdentity.gcpServiceAccount="])


@pytest.mark.parametrize(
    "set_values",
    [
        ["gcp.auth=workloadIdentity", f"gcp.workloadIdentity.gcpServiceAccount={GSA}"],
        # GCE's default compute service account is a valid (if broad) choice too.
        [
            "gcp.auth=workloadIdentity",
            "gcp.workloadIdentity.gcpServiceAccount=123456-compute@developer.gserviceaccount.com",
        ],
        ["gcp.auth=keySecret", "gcp.keySecret.existingSecret=gcp-key"],
        ["training.gpusPerWorker=0"],
    ],
)
def test_schema_accepts_consistent_values(helm: Helm, set_values: list[str]) -> None:
    assert helm.template(set_values=set_values)
