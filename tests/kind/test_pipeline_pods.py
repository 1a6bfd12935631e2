"""The compiled pipeline's data path on real pods: ingest, split, train-stage1 and evaluate each
run once, in pipeline order, as a pod of the image the compiled YAML names, reading its inputs
from and writing its outputs to the cluster's artifact store (SeaweedFS, as KFP 2.17 lays it
out) at the `minio://mlpipeline/v2/artifacts/...` URIs a KFP backend hands them.

What KFP's backend does around each task (executor input, downloading inputs to `/minio/...`,
uploading outputs) is played by tests/kind/kfp_task_pod.py (its docstring says how); the
task's own command line is the compiled one, unchanged. So a task that cannot read its inputs
from the store, writes outputs where KFP does not look, lacks the store's keys where it needs
them (the training step hands minio:// URIs to its TFJob and reads the model back), or whose
image breaks under the restricted profile fails here, before a KFP backend runs it (issue 12).

The training step runs as KFP would run it: in KFP's namespace as the pipeline-runner account,
with only the rights the chart's Role gives that account in the training namespace, where it
creates a real TFJob (stage 1, tiny profile, 2 workers) whose replicas read the split's
minio:// URI and write the model's. Only train-stage1 runs (the other three stages are the same
component with other presets); evaluate gets the stage-1 model for all four of its model
inputs, which are all required.

Data: the embedded dataset at 3 classes x 12 images. Pods, the TFJob and the run's objects in
the store are deleted at the end.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from landmarks import artifacts, storage
from landmarks.tfjob.launcher import LAUNCH_KEY_LABEL, RUN_ID_LABEL, launch_identity
from landmarks.train.recipe import PROFILES
from pipelines.landmark_pipeline import PIPELINE_NAME
from tests.images.executor import (
    Artifact,
    CompiledPipeline,
    ExecutorOutput,
    Workspace,
    compile_to,
)
from tests.kind.conftest import (
    KFP_NAMESPACE,
    STORE_BUCKET,
    STORE_SECRET,
    Runner,
    Store,
    get_json,
    kubectl,
)
from tests.kind.kfp_task_pod import (
    RUN_LABEL,
    TaskPod,
    delete_pods,
    restricted_refusal,
    run_to_end,
    task_pod,
)

# KFP's default pipeline root (a run may name another; any minio:// root takes this path).
PIPELINE_ROOT = f"minio://{STORE_BUCKET}/v2/artifacts"
TINY_DATA = {"embedded_classes": 3, "embedded_images_per_class": 12}
# The cluster's one real node; the chart's kind values send training to a `gpu-pool` that this
# one-node cluster has not, so the run names the node's pool as a run's parameter would.
RUN_ARGS = {
    **TINY_DATA,
    "profile": "tiny",
    "workers": 2,
    "gpus_per_worker": 0,
    "node_selector": "cloud.google.com/gke-nodepool=default-pool",
    # The launcher deletes its TFJob and fails the step past this: the test's own bound.
    "train_timeout_s": 420,
}
TIMEOUT_S = {"ingest": 240, "split": 180, "train": 540, "evaluate": 360}
MODEL_INPUTS = ("stage1", "stage2_vgg16", "stage2_resnet50", "stage3")
MODEL_NAMES = ("stage1-lenet5", "stage2-vgg16", "stage2-resnet50", "stage3-resnet50-aug")


@dataclass
class KfpRun:
    """One pipeline run's id, where its artifacts go, and the pods it made (to delete)."""

    cluster: str
    runner: Runner
    training_namespace: str
    compiled: CompiledPipeline
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    pods: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return f"{PIPELINE_ROOT}/{PIPELINE_NAME}/{self.run_id}"

    def run(
        self,
        task: str,
        *,
        inputs: dict[str, Artifact] | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> TaskRun:
        """The task's pod, run to the end; the pod must succeed."""
        # The URIs are under the run's root in the store; nothing is on this machine.
        call = self.compiled.call(
            task,
            Workspace(Path("/nonexistent"), self.root),
            inputs=inputs,
            run_id=self.run_id,
            pipeline_args=RUN_ARGS,
            overrides=overrides,
        )
        label = self.compiled.executor_label(task)
        pod = task_pod(
            call,
            self.compiled.container(task),
            self.compiled.platform.get(label, {}),
            name=f"{task}-{self.run_id[:8]}",
            namespace=self.runner.namespace,
            service_account=self.runner.service_account,
            store_secret=STORE_SECRET,
            run_label=self.run_id,
            executor_output_uri=f"{self.root}/{task}/output_metadata.json",
            deadline_s=TIMEOUT_S[task] + 60,
        )
        refused = restricted_refusal(self.cluster, pod, self.training_namespace)
        assert not refused, f"{task}'s pod breaks the restricted profile: {refused}"
        self.pods.append(pod.name)
        finished = run_to_end(self.cluster, pod, TIMEOUT_S[task])
        self.seconds[task] = finished.wall_s
        print(
            f"{task} ({call.image}): pod {finished.wall_s:.1f}s wall, containers "
            + ", ".join(f"{k} {v:.0f}s" for k, v in finished.containers_s.items())
        )
        assert finished.phase == "Succeeded", (
            f"{task} pod {finished.phase}:\n{finished.logs[-6000:]}"
        )
        return TaskRun(task, pod, call.executor_input, finished.logs)


@dataclass
class TaskRun:
    task: str
    pod: TaskPod
    executor_input: dict[str, Any]
    logs: str

    def uri(self, output: str) -> str:
        (runtime,) = self.executor_input["outputs"]["artifacts"][output]["artifacts"]
        return str(runtime["uri"])

    def result(self) -> ExecutorOutput:
        """The executor output the task wrote, as the launcher stand-in stored it."""
        return ExecutorOutput(json.loads(storage.read_text(self.pod.executor_output_uri)))


def _image_parts(reference: str) -> tuple[str, str, str]:
    """`registry/landmarks-<role>:tag` -> (registry, role, tag)."""
    repository, _, tag = reference.rpartition(":")
    registry, _, name = repository.rpartition("/")
    assert name.startswith("landmarks-") and tag, f"not a project image reference: {reference}"
    return registry, name.removeprefix("landmarks-"), tag


@pytest.fixture(scope="module")
def compiled(
    tmp_path_factory: pytest.TempPathFactory, component_image: str, trainer_image: str
) -> CompiledPipeline:
    """The pipeline compiled for kind: the CPU trainer, the images loaded into the node."""
    registry, _, tag = _image_parts(component_image)
    path = compile_to(
        tmp_path_factory.mktemp("compiled") / "pipeline.yaml",
        env={
            "LANDMARKS_TRAINER_VARIANT": "cpu",
            "LANDMARKS_REGISTRY": registry,
            "LANDMARKS_IMAGE_TAG": tag,
        },
    )
    pipeline = CompiledPipeline(path)
    assert pipeline.pipeline_default("trainer_image") == trainer_image
    assert {pipeline.image(t) for t in pipeline.tasks} == {component_image, trainer_image}
    return pipeline


@pytest.fixture(scope="module")
def kfp_run(
    cluster: str,
    store: Store,
    pipeline_runner: Runner,
    training_namespace: str,
    compiled: CompiledPipeline,
) -> Iterator[KfpRun]:
    found = KfpRun(cluster, pipeline_runner, training_namespace, compiled)
    assert found.runner.namespace == KFP_NAMESPACE, found.runner
    try:
        yield found
    finally:
        print(
            "seconds per task pod:", json.dumps({k: round(v, 1) for k, v in found.seconds.items()})
        )
        delete_pods(cluster, found.runner.namespace, found.pods)
        kubectl(cluster, "delete", "tfjob", "-n", training_namespace, "-l",
                f"{RUN_ID_LABEL}={found.run_id}", "--ignore-not-found", "--wait=false")  # fmt: skip
        for rel in list(storage.list_files(found.root)):
            storage.delete(storage.join(found.root, rel))


@pytest.fixture(scope="module")
def ingested(kfp_run: KfpRun) -> TaskRun:
    return kfp_run.run("ingest")


@pytest.fixture(scope="module")
def split_run(kfp_run: KfpRun, ingested: TaskRun) -> TaskRun:
    images = ingested.result().artifact("images", "system.Dataset")
    return kfp_run.run("split", inputs={"images": images})


@pytest.fixture(scope="module")
def trained(kfp_run: KfpRun, split_run: TaskRun) -> TaskRun:
    task = kfp_run.compiled.task_shown_as("train-stage1")
    splits = split_run.result().artifact("splits", "system.Dataset")
    return kfp_run.run(task, inputs={"splits": splits})


@pytest.fixture(scope="module")
def evaluated(kfp_run: KfpRun, split_run: TaskRun, trained: TaskRun) -> TaskRun:
    model = trained.result().artifact("model", "system.Model")
    inputs = {name: model for name in MODEL_INPUTS}
    inputs["splits"] = split_run.result().artifact("splits", "system.Dataset")
    return kfp_run.run("evaluate", inputs=inputs, overrides={"batch_size": 8})


def _csv_rows(uri: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(storage.read_text(uri))))


def test_ingest_pod_writes_the_validated_images_to_the_store(ingested: TaskRun) -> None:
    images = ingested.uri("images")
    assert images.startswith(f"{PIPELINE_ROOT}/{PIPELINE_NAME}/"), images
    stats = ingested.result().metadata("stats")
    rows = _csv_rows(storage.join(images, artifacts.INGEST_MANIFEST))
    ok = [row for row in rows if row["status"] == "ok"]
    assert (
        stats["ok"]
        == len(ok)
        >= TINY_DATA["embedded_classes"] * TINY_DATA["embedded_images_per_class"]
    )
    assert stats["failed"] >= 1, "the embedded dataset's broken rows were not seen as such"
    stored = set(storage.list_files(images))
    assert {row["path"] for row in ok} <= stored
    assert {artifacts.INGEST_LABELS, artifacts.INGEST_SUMMARY} <= stored


def test_split_pod_reads_ingest_from_the_store_and_writes_the_split(
    split_run: TaskRun, ingested: TaskRun
) -> None:
    # Its pod began with an empty /minio: the images came from the store, by the initContainer.
    assert f"downloaded {ingested.uri('images')} -> /minio/" in split_run.logs, split_run.logs
    stats = split_run.result().metadata("stats")
    assert stats["classes"] == TINY_DATA["embedded_classes"]
    assert stats["input_images"] == ingested.result().metadata("stats")["ok"]
    splits = split_run.uri("splits")
    stored = set(storage.list_files(splits))
    for subset in ("train", "validation", "test"):
        classes = {rel.split("/")[1] for rel in stored if rel.startswith(f"{subset}/")}
        assert len(classes) == TINY_DATA["embedded_classes"], (subset, classes)
    assert {artifacts.LABEL_MAP, artifacts.SPLIT_MANIFEST} <= stored
    images = sum(1 for rel in stored if rel.endswith(".jpg"))
    assert images == stats["train_images"] + stats["validation_images"] + stats["test_images"]


def test_train_pod_launches_a_tfjob_whose_replicas_use_the_store(
    kfp_run: KfpRun, trained: TaskRun, split_run: TaskRun
) -> None:
    key = launch_identity(kfp_run.run_id, trained.task).key
    (job,) = get_json(kfp_run.cluster, "tfjob", "-n", kfp_run.training_namespace, "-l",
                      f"{LAUNCH_KEY_LABEL}={key}")["items"]  # fmt: skip
    ended = {c["type"] for c in job["status"]["conditions"] if c["status"] == "True"}
    assert "Succeeded" in ended, job["status"]
    workers = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert workers["replicas"] == 2
    (container,) = workers["template"]["spec"]["containers"]
    argv = [*container.get("command", []), *container.get("args", [])]
    model = trained.uri("model")
    # The replicas read the split and write the model at their minio:// URIs themselves.
    assert split_run.uri("splits") in argv and model in argv, argv
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in container["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert secrets == {"AWS_ACCESS_KEY_ID": STORE_SECRET, "AWS_SECRET_ACCESS_KEY": STORE_SECRET}
    history = json.loads(storage.read_text(storage.join(model, artifacts.HISTORY_FILE)))
    assert [e["epoch"] for e in history] == list(range(1, PROFILES["tiny"]["epochs"] + 1))
    stored = set(storage.list_files(model))
    assert {artifacts.MODEL_FILE, artifacts.CONFIG_FILE, artifacts.LABEL_MAP} <= stored
    scores = trained.result().metadata("scores")
    assert scores and set(scores) <= set(history[-1]), scores
    assert "2 worker(s) on the cluster executor" in trained.logs, trained.logs[-3000:]


def test_evaluate_pod_writes_report_metrics_and_confusion_matrix(
    evaluated: TaskRun, trained: TaskRun
) -> None:
    assert f"downloaded {trained.uri('model')} -> /minio/" in evaluated.logs, evaluated.logs
    output = evaluated.result()
    assert output.parameter() in MODEL_NAMES
    scores = output.metadata("scores")
    for name in MODEL_NAMES:
        assert 0.0 <= scores[f"{name}.top1"] <= scores[f"{name}.top5"] <= 1.0
        assert scores[f"{name}.n_test"] > 0
    matrix = output.metadata("confusion")["confusionMatrix"]
    assert len(matrix["rows"]) == len(matrix["annotationSpecs"]) == TINY_DATA["embedded_classes"]
    report = storage.read_text(evaluated.uri("report"))
    assert report.lstrip().lower().startswith("<!doctype html")
    assert storage.read_text(evaluated.uri("report_markdown")).strip()
    evaluation = evaluated.uri("evaluation")
    summary = json.loads(
        storage.read_text(storage.join(evaluation, artifacts.EVALUATION_SUMMARY_FILE))
    )
    assert summary, "empty evaluation summary"
    for name in MODEL_NAMES:
        metrics = json.loads(
            storage.read_text(storage.join(evaluation, name, artifacts.METRICS_FILE))
        )
        assert metrics, name


def test_task_pods_ran_as_the_pipeline_runner_in_kfps_namespace(
    kfp_run: KfpRun, evaluated: TaskRun
) -> None:
    pods = get_json(kfp_run.cluster, "pods", "-n", kfp_run.runner.namespace, "-l",
                    f"{RUN_LABEL}={kfp_run.run_id}")["items"]  # fmt: skip
    assert len(pods) == 4, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == kfp_run.runner.service_account
        assert pod["status"]["phase"] == "Succeeded", pod["metadata"]["name"]
