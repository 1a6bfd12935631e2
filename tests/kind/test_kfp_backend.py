"""The compiled pipeline on a real Kubeflow Pipelines backend (issue 12): the API server,
persistence agent, Argo, KFP's driver and launcher built from the pinned release, installed by
`make deploy KFP=offline` (scripts/kfp/install.sh), and the version `make deploy` uploaded.

`make kfp-e2e` (scripts/kfp/e2e.sh) sets this up on its own kind cluster; on a cluster without
KFP (the kind suite's) every test here skips. What is read back is what the UI shows: the run
and its state from the API server, the tasks and their artifacts from ML Metadata (the UI reads
it the same way, through its gRPC-web proxy), artifact contents from the store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from landmarks import config, storage
from pipelines import upload
from tests.kind.conftest import KFP_NAMESPACE, PortForward, Store, get_json, kubectl_run

PIPELINE = "landmark-recognition"
# The stages as the UI names them (the tasks' display names), in pipeline order.
TRAINING_STEPS = ("train-stage1", "train-stage2-vgg16", "train-stage2-resnet50", "train-stage3")
STEPS = ("ingest", "split", *TRAINING_STEPS, "evaluate")
MODELS = ("stage1-lenet5", "stage2-vgg16", "stage2-resnet50", "stage3-resnet50-aug")
# CPU workers, the tiny trainer profile, no ImageNet download (the kind node has no internet);
# no metadata: the ingest step generates the embedded dataset (6 landmarks) inside its pod.
PARAMS = {"workers": 2, "profile": "tiny", "weights": "none", "embedded_images_per_class": 20}
SECOND_IMAGES_PER_CLASS = 12
EMBEDDED_CLASSES = 6
RUN_TIMEOUT_S = float(os.environ.get("LANDMARKS_KFP_RUN_TIMEOUT", "1800"))
MLMD_QUERY = Path(__file__).with_name("mlmd_query.py")
# Where the task times go for scripts/kfp/e2e.sh to print (none: not written).
REPORT = os.environ.get("LANDMARKS_KFP_E2E_REPORT")
# A run takes 5-7 minutes on 2 shared cores: past the suite's default per-test timeout.
pytestmark = pytest.mark.timeout(RUN_TIMEOUT_S + 300)


@pytest.fixture(scope="module")
def kfp_installed(cluster: str) -> str:
    proc = kubectl_run(cluster, "-n", KFP_NAMESPACE, "get", "deployment", "ml-pipeline")
    if proc.returncode != 0:
        pytest.skip(f"no KFP in {KFP_NAMESPACE} on kind-{cluster}: make kfp-e2e installs it")
    return cluster


@pytest.fixture(scope="module")
def client(kfp_installed: str) -> Iterator[Any]:
    forward = PortForward(kfp_installed, KFP_NAMESPACE, "svc/ml-pipeline", 8888)
    try:
        yield upload.connect(f"http://127.0.0.1:{forward.local_port}")
    finally:
        forward.stop()


@pytest.fixture(scope="module")
def mlmd(kfp_installed: str) -> Iterator[int]:
    """The local port of a port-forward to KFP's ML Metadata service."""
    forward = PortForward(kfp_installed, KFP_NAMESPACE, "svc/metadata-grpc-service", 8080)
    try:
        yield forward.local_port
    finally:
        forward.stop()


def mlmd_image() -> str:
    ref = subprocess.run(
        [str(Path(__file__).resolve().parents[2] / "scripts/kfp/support-images.sh"),
         "--print-ref", "mlmd-server"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    return ref


def run_in_mlmd(port: int, run_id: str) -> dict[str, Any]:
    """ML Metadata's record of a run, read with the ml-metadata client of the MLMD image."""
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", "host",
         "-v", f"{MLMD_QUERY}:/mlmd_query.py:ro", "--entrypoint", "/opt/mlmd/bin/python",
         mlmd_image(), "/mlmd_query.py", "--port", str(port), run_id],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def steps_of(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The run's container executions by display name."""
    return {
        e["properties"].get("display_name", ""): e
        for e in record["executions"]
        if e["type"] == "system.ContainerExecution"
    }


def uploaded_version(client: Any) -> upload.Uploaded:
    """The version `make deploy` uploaded (named after the image tag, like every upload)."""
    pipeline_id = client.get_pipeline_id(PIPELINE)
    assert pipeline_id, f"no pipeline {PIPELINE}: make deploy uploads it (UPLOAD=1)"
    versions = client.list_pipeline_versions(pipeline_id, page_size=100).pipeline_versions or []
    tag = config.image_tag()
    named = [v for v in versions if v.display_name == tag]
    assert named, f"no version {tag} of {PIPELINE}: {[v.display_name for v in versions]}"
    return upload.Uploaded(pipeline_id, named[0].pipeline_version_id, tag, False, True)


def start_and_wait(client: Any, params: dict[str, Any], label: str) -> Any:
    now = dt.datetime.now(dt.UTC)
    return upload.run_version(
        client,
        uploaded_version(client),
        params=params,
        experiment="kfp-e2e",
        run_name=f"{PIPELINE} e2e {label} {now:%Y%m%d-%H%M%S}",
        timeout_s=RUN_TIMEOUT_S,
        poll_s=10,
    )


def report(section: str, value: Any) -> None:
    if not REPORT:
        return
    path = Path(REPORT)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[section] = value
    path.write_text(json.dumps(data, indent=2))


def step_times(run: Any, record: dict[str, Any]) -> dict[str, Any]:
    steps = steps_of(record)
    return {
        "run_id": run.run_id,
        "state": str(run.state),
        "run_seconds": (run.finished_at - run.created_at).total_seconds(),
        "steps": {
            name: round((steps[name]["updated_ms"] - steps[name]["created_ms"]) / 1000, 1)
            for name in STEPS
            if name in steps
        },
    }


@pytest.fixture(scope="module")
def first_run(client: Any, mlmd: int) -> tuple[Any, dict[str, Any]]:
    run = start_and_wait(client, PARAMS, "first")
    record = run_in_mlmd(mlmd, run.run_id)
    report("first_run", step_times(run, record))
    return run, record


def test_the_uploaded_run_succeeds_with_every_step(first_run: tuple[Any, dict[str, Any]]) -> None:
    run, record = first_run
    assert str(run.state).upper() == "SUCCEEDED", getattr(run, "error", None)
    steps = steps_of(record)
    assert set(steps) == set(STEPS), sorted(steps)
    assert {name: e["state"] for name, e in steps.items()} == dict.fromkeys(STEPS, "COMPLETE")


def test_each_training_step_ran_a_two_worker_tfjob(
    first_run: tuple[Any, dict[str, Any]], training_namespace: str, kfp_installed: str
) -> None:
    run, _ = first_run
    jobs = get_json(
        kfp_installed, "tfjobs", "-n", training_namespace, "-l", f"landmarks.io/run-id={run.run_id}"
    )["items"]
    by_step = {
        step: [j for j in jobs if j["metadata"]["name"].startswith(f"{step}-")]
        for step in TRAINING_STEPS
    }
    assert {step: len(found) for step, found in by_step.items()} == dict.fromkeys(
        TRAINING_STEPS, 1
    ), [j["metadata"]["name"] for j in jobs]
    placement = {}
    for step, (job,) in by_step.items():
        name = job["metadata"]["name"]
        assert job["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 2, name
        conditions = {c["type"]: c["status"] for c in job["status"]["conditions"]}
        assert conditions.get("Succeeded") == "True", (name, job["status"])
        # The operator's count: a worker still running when the chief finishes is deleted
        # with the job's success (cleanPodPolicy Running), so its pod may be gone.
        assert job["status"]["replicaStatuses"]["Worker"].get("succeeded") == 2, name
        pods = get_json(
            kfp_installed, "pods", "-n", training_namespace,
            "-l", f"training.kubeflow.org/job-name={name}",
        )["items"]  # fmt: skip
        assert pods and {p["status"]["phase"] for p in pods} == {"Succeeded"}, name
        placement[step] = sorted(p["spec"]["nodeName"] for p in pods)
    report("tfjob_nodes", placement)


def test_the_ui_artifacts_hold_what_the_run_logged(
    first_run: tuple[Any, dict[str, Any]], store: Store
) -> None:
    """Metrics, the confusion matrix, the HTML report: ML Metadata's values are the ones the
    evaluate step wrote to its summary, and the report it points to is the self-contained page."""
    _, record = first_run
    outputs = steps_of(record)["evaluate"]["outputs"]
    types = {name: found[0]["type"] for name, found in outputs.items()}
    assert types | {"executor-logs": "system.Artifact"} == {
        "scores": "system.Metrics",
        "confusion": "system.ClassificationMetrics",
        "report": "system.HTML",
        "report_markdown": "system.Markdown",
        "evaluation": "system.Artifact",
        "executor-logs": "system.Artifact",
    }
    summary = json.loads(
        storage.read_text(storage.join(outputs["evaluation"][0]["uri"], "summary.json"))
    )
    scores = outputs["scores"][0]["properties"]
    for model in MODELS:
        for key in ("top1", "top5", "gap", "n_test"):
            assert scores[f"{model}.{key}"] == pytest.approx(
                summary["models"][model][key], abs=1e-6
            ), (model, key)
    matrix = outputs["confusion"][0]["properties"]["confusionMatrix"]["struct"]
    rows = [r["row"] for r in matrix["rows"]]
    labels = [a["displayName"] for a in matrix["annotationSpecs"]]
    assert len(labels) == EMBEDDED_CLASSES and all(len(r) == len(labels) for r in rows)
    best = summary["best_model"]
    assert sum(map(sum, rows)) == summary["models"][best]["n_test"]
    html = storage.read_text(outputs["report"][0]["uri"])
    assert html.lstrip().lower().startswith("<!doctype html")
    assert best in html and "data:image/png;base64," in html
    # The Markdown copy the UI shows carries its pictures (relative links showed broken).
    markdown = storage.read_text(outputs["report_markdown"][0]["uri"])
    assert "](data:image/png;base64," in markdown and ".png)" not in markdown
    report("evaluate", {"best_model": best, "scores": {m: summary["models"][m] for m in MODELS}})


def test_a_second_run_with_a_changed_parameter(
    client: Any, mlmd: int, first_run: tuple[Any, dict[str, Any]]
) -> None:
    """The same uploaded version, one parameter changed, as a user of the UI would start it:
    the run succeeds and its steps saw the new value (fewer images per landmark)."""
    first, first_record = first_run
    params = PARAMS | {"embedded_images_per_class": SECOND_IMAGES_PER_CLASS}
    run = start_and_wait(client, params, "second")
    record = run_in_mlmd(mlmd, run.run_id)
    report("second_run", step_times(run, record))
    assert str(run.state).upper() == "SUCCEEDED", getattr(run, "error", None)
    assert run.pipeline_version_reference.pipeline_version_id == (
        first.pipeline_version_reference.pipeline_version_id
    )
    assert run.runtime_config.parameters["embedded_images_per_class"] == SECOND_IMAGES_PER_CLASS

    def split_stats(rec: dict[str, Any]) -> dict[str, Any]:
        return steps_of(rec)["split"]["outputs"]["stats"][0]["properties"]

    assert (
        split_stats(first_record)["input_images"]
        == EMBEDDED_CLASSES * PARAMS["embedded_images_per_class"]
    )
    assert split_stats(record)["input_images"] == EMBEDDED_CLASSES * SECOND_IMAGES_PER_CLASS
    assert set(steps_of(record)) == set(STEPS)
