"""Multi-worker training across real containers of the trainer-cpu image, as a TFJob runs it.

Two `python -m landmarks.train` replicas of the manifest the launcher builds
(`landmarks.tfjob.spec.training_job`), each its own container with its own network
namespace, on a user-defined Docker network, finding each other by the operator's Service
names in `TF_CONFIG` (`<job>-worker-<i>.<namespace>.svc:2222`); split and outputs on a
bind mount, the root filesystem read-only with /tmp as the only scratch, uid 1000. The
image is the trainer image the compiled pipeline bakes in (LANDMARKS_TRAINER_VARIANT=cpu,
as on kind).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from landmarks import artifacts, config
from landmarks.tfjob.spec import training_job
from landmarks.train import HISTORY_FILE, MODEL_FILE
from tests.images.containers import LABEL, ContainerRunner, docker
from tests.images.executor import CompiledPipeline, compile_to
from tests.images.tfjob_containers import ContainerTFJob, ReplicaContainer, operator_cluster
from tests.train.splits import make_split

pytestmark = pytest.mark.images

MOUNT = "/data"
NAMESPACE = "landmarks-training"
# The end-of-epoch line of each replica (not the in-epoch "step" lines).
EPOCH_LINE = re.compile(r"worker-(\d) epoch (\d+)/(\d+) (?!step)")
JOB_TIMEOUT_S = 420


@pytest.fixture(scope="module")
def trainer_image(image_refs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The trainer image the compiled pipeline names (its `trainer_image` default), on kind."""
    path = compile_to(
        tmp_path_factory.mktemp("compiled") / "pipeline.yaml",
        env={
            "LANDMARKS_TRAINER_VARIANT": "cpu",
            # This session's references, even if a commit lands between build and test.
            "LANDMARKS_REGISTRY": config.REGISTRY,
            "LANDMARKS_IMAGE_TAG": config.image_tag(),
        },
    )
    reference = CompiledPipeline(path).pipeline_default("trainer_image")
    assert reference == image_refs["trainer-cpu"]
    return reference


@pytest.fixture
def network(docker_engine: str) -> Iterator[str]:
    """A user-defined bridge network (the engine's DNS answers container aliases there)."""
    name = f"landmarks-test-{uuid.uuid4().hex[:8]}"
    network_id = docker("network", "create", f"--label={LABEL}={name}", name).strip()
    try:
        yield name
    finally:
        docker("network", "rm", network_id, check=False)


def _workspace(tmp_path: Path, train: int, validation: int) -> Path:
    root = tmp_path / "data"
    make_split(root / "split", classes=3, train=train, validation=validation)
    # The replicas run as uid 1000 and write the model and checkpoints beside the split.
    root.chmod(0o777)
    return root


def _job(name: str, image: str, epochs: int, overrides: dict | None = None) -> dict:
    manifest = training_job(
        name,
        stage="stage1",
        data=f"{MOUNT}/split",
        out=f"{MOUNT}/model",
        profile="tiny",
        overrides={"epochs": epochs, **(overrides or {})},
        workers=2,
        image=image,
        namespace=NAMESPACE,
    ).to_manifest()
    assert operator_cluster(manifest) == {
        "worker": [f"{name}-worker-{i}.{NAMESPACE}.svc:2222" for i in range(2)]
    }
    return manifest


def _history(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not there yet, or being replaced
        return []


def test_two_worker_containers_train_stage1_to_the_end(
    run_in_image: ContainerRunner,
    image_refs: dict[str, str],
    trainer_image: str,
    network: str,
    tmp_path: Path,
) -> None:
    root = _workspace(tmp_path, train=8, validation=3)
    epochs = 3
    job = ContainerTFJob(
        _job("mw-tiny", trainer_image, epochs),
        run_in_image,
        network=network,
        volumes={str(root): MOUNT},
        images=image_refs,
    )
    checkpoint_history = root / "model" / ".checkpoint" / HISTORY_FILE
    seen_checkpoint: list[int] = []

    def watch(_: ContainerTFJob) -> None:
        if checkpoint_history.exists():
            seen_checkpoint.append(len(_history(checkpoint_history)))

    job.start()
    outcome = job.supervise(JOB_TIMEOUT_S, on_poll=watch)
    print(f"two-container training: {outcome.seconds:.1f}s", *outcome.events, sep="\n")
    assert outcome.succeeded, f"{outcome.reason}\n{job.logs()}"
    assert [r.exit_code for r in job.replicas] == [0, 0], job.logs()
    assert [r.restarts for r in job.replicas] == [0, 0]

    chief, other = job.replica("worker-0"), job.replica("worker-1")
    chief_log, other_log = chief.stderr(), other.stderr()
    assert "worker-0: lenet5 on 3 classes, 2 workers (chief: True)" in chief_log
    assert "worker-1: lenet5 on 3 classes, 2 workers (chief: False)" in other_log
    # Both trained every epoch in step (synchronous all-reduce), not each alone.
    for index, log in ((0, chief_log), (1, other_log)):
        epochs_run = [int(m[2]) for m in EPOCH_LINE.finditer(log) if m[1] == str(index)]
        assert epochs_run == list(range(1, epochs + 1)), log[-3000:]

    model = root / "model"
    assert (model / MODEL_FILE).stat().st_size > 0
    assert [e["epoch"] for e in _history(model / HISTORY_FILE)] == list(range(1, epochs + 1))
    assert (model / artifacts.CONFIG_FILE).exists() and (model / artifacts.LABEL_MAP).exists()
    assert any((model / "logs").rglob("events.out.tfevents.*")), "no TensorBoard events"
    # The chief checkpointed every epoch while training, and cleared them after saving.
    assert seen_checkpoint and max(seen_checkpoint) >= 1
    assert not (model / ".checkpoint").exists()
    # Only the chief's model is kept; the other worker wrote nothing beside it.
    owners = {p.stat().st_uid for p in model.rglob("*")}
    assert owners == {1000}


def test_a_killed_worker_container_is_restarted_and_training_resumes(
    run_in_image: ContainerRunner,
    image_refs: dict[str, str],
    trainer_image: str,
    network: str,
    tmp_path: Path,
) -> None:
    root = _workspace(tmp_path, train=80, validation=6)
    epochs = 10
    job = ContainerTFJob(
        # All 80 images a class, so an epoch lasts long enough to be interrupted.
        _job("mw-resume", trainer_image, epochs, {"max_images_per_class": 0}),
        run_in_image,
        network=network,
        volumes={str(root): MOUNT},
        images=image_refs,
    )
    checkpoint_history = root / "model" / ".checkpoint" / HISTORY_FILE
    killed: dict[str, float] = {}
    chief_restart: dict[str, int] = {}

    def kill_the_worker_mid_training(job: ContainerTFJob) -> None:
        if killed:
            return
        done = len(_history(checkpoint_history))
        if done >= 2:
            assert done < epochs, "training finished before the worker could be killed"
            docker("kill", job.replica("worker-1").container.id)
            job.note(f"killed worker-1 after epoch {done} (docker kill)")
            killed.update(epochs_done=done, at=time.monotonic())

    def record_chief_state(replica: ReplicaContainer, code: int) -> None:
        if replica.label == "worker-0":
            # The chief wrote the history and is down: the checkpoint cannot move any more.
            chief_restart.update(
                code=code,
                epochs_done=len(_history(checkpoint_history)),
                log_offset=len(replica.stderr()),
            )

    job.start()
    outcome = job.supervise(
        JOB_TIMEOUT_S, before_restart=record_chief_state, on_poll=kill_the_worker_mid_training
    )
    print(
        f"resume job: {outcome.seconds:.1f}s; killed worker-1 after epoch "
        f"{killed.get('epochs_done')}; chief restarted after {chief_restart}",
        *outcome.events,
        sep="\n",
    )
    assert outcome.succeeded, f"{outcome.reason}\n{job.logs()}"
    assert killed, "the worker was never killed"
    worker, chief = job.replica("worker-1"), job.replica("worker-0")
    events = "\n".join(outcome.events)
    assert "worker-1 exited 137 (retryable)" in events
    # The survivor loses its peer and asks to be restarted (the trainer's 138), and the
    # operator's ExitCode policy restarts it; emulated here as for the killed worker.
    assert chief_restart.get("code") == 138, events + job.logs()
    assert worker.restarts == 1 and chief.restarts == 1
    assert [r.exit_code for r in job.replicas] == [0, 0], job.logs()

    resumed_log = chief.stderr()[chief_restart["log_offset"] :]
    resumed = [int(m[2]) for m in EPOCH_LINE.finditer(resumed_log) if m[1] == "0"]
    last_done = chief_restart["epochs_done"]
    print(f"resumed at epoch {resumed[0] if resumed else None} after {last_done} completed")
    assert last_done >= killed["epochs_done"] >= 2
    assert resumed == list(range(last_done + 1, epochs + 1)), resumed_log[-3000:]
    worker_resumed = [int(m[2]) for m in EPOCH_LINE.finditer(worker.stderr()) if m[1] == "1"]
    # The killed worker ran epochs 1..k before, then the same epochs as the chief.
    assert worker_resumed[-len(resumed) :] == resumed
    model = root / "model"
    assert [e["epoch"] for e in _history(model / HISTORY_FILE)] == list(range(1, epochs + 1))
    assert (model / MODEL_FILE).stat().st_size > 0
    assert os.stat(model / MODEL_FILE).st_uid == 1000
