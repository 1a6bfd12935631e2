"""Training pods authenticate to GCP by Workload Identity, a key-file Secret, or not at all."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.charts.helm import Helm, find, training_defaults

WI_ANNOTATION = "iam.gke.io/gcp-service-account"
GSA = "landmarks-trainer@my-gcp-project.iam.gserviceaccount.com"


def test_workload_identity_annotates_the_trainer_service_account(helm: Helm) -> None:
    objects = helm.template("gke")
    sa = find(objects, "ServiceAccount", "landmarks-trainer")
    assert sa["metadata"]["annotations"][WI_ANNOTATION] == GSA
    defaults = training_defaults(objects)
    assert defaults["gcpAuth"] == "workloadIdentity"
    assert "Secret" not in {obj["kind"] for obj in objects}
    assert [v["name"] for v in defaults["volumes"]] == ["scratch"]
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in {e["name"] for e in defaults["container"]["env"]}


def test_workload_identity_keeps_other_annotations(helm: Helm) -> None:
    objects = helm.template("gke", set_values=["trainer.serviceAccount.annotations.owner=vision"])
    annotations = find(objects, "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {WI_ANNOTATION: GSA, "owner": "vision"}


@pytest.mark.parametrize(
    "set_values",
    [
        ["gcp.auth=none"],
        # A service account left over from a WI setup must not leak into another mode.
        ["gcp.auth=none", f"gcp.workloadIdentity.gcpServiceAccount={GSA}"],
        ["gcp.auth=keySecret", "gcp.keySecret.existingSecret=k"],
    ],
)
def test_no_workload_identity_annotation_in_other_modes(helm: Helm, set_values: list[str]) -> None:
    sa = find(helm.template(set_values=set_values), "ServiceAccount")
    assert WI_ANNOTATION not in (sa["metadata"].get("annotations") or {})


def test_key_file_becomes_a_secret_mounted_into_training_pods(helm: Helm, tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account", "project_id": "p"}')
    objects = helm.template(
        set_values=["gcp.auth=keySecret"], set_files=[f"gcp.keySecret.keyFile={key}"]
    )

    secret = find(objects, "Secret", "landmarks-trainer-gcp-key")
    assert secret["metadata"]["namespace"] == "landmarks-training"
    assert base64.b64decode(secret["data"]["key.json"]).decode() == key.read_text()

    defaults = training_defaults(objects)
    assert {
        "name": "gcp-key",
        "secret": {
            "secretName": "landmarks-trainer-gcp-key",
            "items": [{"key": "key.json", "path": "key.json"}],
        },
    } in defaults["volumes"]
    mount = {"name": "gcp-key", "mountPath": "/var/secrets/google", "readOnly": True}
    assert mount in defaults["container"]["volumeMounts"]
    assert {
        "name": "GOOGLE_APPLICATION_CREDENTIALS",
        "value": "/var/secrets/google/key.json",
    } in defaults["container"]["env"]


def test_existing_key_secret_is_mounted_not_created(helm: Helm) -> None:
    objects = helm.template(
        "kind", set_values=["gcp.keySecret.secretKey=sa.json", "gcp.keySecret.mountPath=/creds/"]
    )
    assert "Secret" not in {obj["kind"] for obj in objects}
    defaults = training_defaults(objects)
    (volume,) = [v for v in defaults["volumes"] if v["name"] == "gcp-key"]
    assert volume["secret"]["secretName"] == "landmarks-gcp-key"
    env = {e["name"]: e["value"] for e in defaults["container"]["env"]}
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == "/creds/sa.json"


def test_notes_give_the_workload_identity_binding(helm: Helm) -> None:
    notes = helm.notes("gke")
    assert f"gcloud iam service-accounts add-iam-policy-binding {GSA}" in notes
    assert (
        "serviceAccount:my-gcp-project.svc.id.goog[landmarks-training/landmarks-trainer]" in notes
    )


def test_notes_tell_how_to_create_a_missing_key_secret(helm: Helm) -> None:
    notes = helm.notes("kind")
    assert "create secret generic landmarks-gcp-key" in notes
    assert "iam.workloadIdentityUser" not in notes


def test_notes_warn_about_an_ignored_gcp_service_account(helm: Helm) -> None:
    notes = helm.notes(set_values=[f"gcp.workloadIdentity.gcpServiceAccount={GSA}"])
    assert "WARNING: gcp.workloadIdentity.gcpServiceAccount is set but ignored" in notes
