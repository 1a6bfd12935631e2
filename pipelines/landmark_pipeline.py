"""ingest -> split -> train-stage1 -> train-stage2 (VGG16, ResNet50) -> train-stage3 -> evaluate."""
# No `from __future__ import annotations`: KFP reads the real annotation objects.

from typing import NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import Artifact, Dataset, Model

from components.evaluate import evaluate
from components.ingest import ingest
from components.split import split
from components.train import train
from landmarks import config
from landmarks.storage import s3 as s3_store
from landmarks.tfjob.launcher import DEFAULT_NAMESPACE
from landmarks.tfjob.placement import GPUS_NOT_SET, NODE_SELECTOR_NOT_SET

PIPELINE_NAME = "landmark-recognition"
# The trainer image follows $LANDMARKS_TRAINER_VARIANT at compile time (`cpu`: kind). Where
# its replicas run (GPUs, node pool) is not compiled in: the run's gpus_per_worker and
# node_selector parameters, else the landmarks-platform chart's values, decide it when the
# step launches (landmarks.tfjob.placement).
TRAINER_IMAGE = config.image(config.trainer_role())


class PipelineOutputs(NamedTuple):
    images: Dataset
    splits: Dataset
    stage1: Model
    stage2_vgg16: Model
    stage2_resnet50: Model
    stage3: Model
    evaluation: Artifact


def _configure(task: dsl.PipelineTask, name: str) -> dsl.PipelineTask:
    # Unbuffered output so long steps stream their progress to the KFP log view.
    task.set_display_name(name)
    task.set_env_variable("PYTHONUNBUFFERED", "1")
    return task


def _launches_a_job(task: dsl.PipelineTask) -> dsl.PipelineTask:
    # A cached step would skip launching its TFJob; a retried one adopts it instead. No
    # accelerator, node selector or toleration here: set on the task, they would reach the
    # replicas as its TaskConfig and override the chart's values on every run.
    task.set_caching_options(False)
    # With KFP's store as pipeline root the step hands minio:// URIs to its TFJob and reads
    # the model back itself, so it needs the store's credentials (its TFJob's replicas get
    # them from the launcher). Optional: a deployment without that Secret still runs.
    kubernetes.use_secret_as_env(
        task,
        secret_name=s3_store.KFP_MINIO_SECRET,
        secret_key_to_env=s3_store.KFP_MINIO_SECRET_ENV,
        optional=True,
    )
    return task


@dsl.pipeline(name=PIPELINE_NAME, description=__doc__)
def landmark_pipeline(
    metadata: str = "",
    labels: str = "",
    images_dir: str = "",
    ingest_limit: int = 0,
    ingest_workers: int = 32,
    min_images: int = 3,
    top_k: int = 0,
    max_per_class: int = 0,
    seed: int = 42,
    embedded_classes: int = 6,
    embedded_images_per_class: int = 40,
    executor: str = "cluster",
    workers: int = 2,
    profile: str = "",
    weights: str = "",
    train_timeout_s: float = 0,
    trainer_image: str = TRAINER_IMAGE,
    training_namespace: str = DEFAULT_NAMESPACE,
    gpus_per_worker: int = GPUS_NOT_SET,
    node_selector: str = NODE_SELECTOR_NOT_SET,
) -> PipelineOutputs:
    """Landmark recognition from Google Landmarks-style metadata.

    Args:
        metadata: `id,url,landmark_id` CSV (local path or gs://, s3://, minio://). Empty: the
            embedded synthetic dataset, generated and served on 127.0.0.1 inside the ingest step.
        labels: Optional `landmark_id,category` CSV.
        images_dir: Optional directory of GLDv2 tar shards or unpacked images.
        ingest_limit: Only ingest the first N rows (0: all).
        ingest_workers: Concurrent downloads.
        min_images: Keep landmarks with at least this many valid images.
        top_k: Keep the K landmarks with most images (0: all).
        max_per_class: Cap on images per landmark (0: none).
        seed: Seed of the split and of the embedded dataset.
        embedded_classes: Landmarks of the embedded dataset (2-10).
        embedded_images_per_class: Valid images per landmark of the embedded dataset.
        executor: Where training jobs run: `cluster` (TFJobs) or `local` (processes).
        workers: Data-parallel workers per training job.
        profile: Trainer profile (`demo`, `tiny`); empty for the seed's full recipe.
        weights: Stage 2 and 3 base weights: `imagenet`, `none` or a no-top weights file
            (empty: imagenet).
        train_timeout_s: Fail a training step after this many seconds (0: 24 h on a cluster,
            no limit locally).
        trainer_image: Image of the training TFJobs' replicas (cluster executor).
        training_namespace: Namespace of the training TFJobs (cluster executor): where the
            landmarks-platform chart is installed.
        gpus_per_worker: GPUs per training replica (cluster executor); 0 for CPU replicas,
            -1 for the chart's `training.gpusPerWorker`.
        node_selector: Node labels the training replicas must run on (cluster executor), as
            `key=value[,key=value]`, e.g. `cloud.google.com/gke-nodepool=a100-pool`; `none`
            for any node; empty for the chart's `training.nodeSelector`.
    """
    ingest_task = _configure(
        ingest(
            metadata=metadata,
            labels=labels,
            embedded_classes=embedded_classes,
            embedded_images_per_class=embedded_images_per_class,
            seed=seed,
            images_dir=images_dir,
            limit=ingest_limit,
            workers=ingest_workers,
        ),
        "ingest",
    )
    split_task = _configure(
        split(
            images=ingest_task.outputs["images"],
            min_images=min_images,
            top_k=top_k,
            max_per_class=max_per_class,
            seed=seed,
        ),
        "split",
    )
    splits = split_task.outputs["splits"]
    training = {
        "executor": executor,
        "workers": workers,
        "profile": profile,
        "timeout_s": train_timeout_s,
        "trainer_image": trainer_image,
        "namespace": training_namespace,
        "gpus_per_worker": gpus_per_worker,
        "node_selector": node_selector,
        # Name each TFJob after the run and the task, so a retried step adopts its job.
        "run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        "kfp_task": dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
    }
    # One component, one task per stage; the display name is what the KFP UI shows.
    stage1 = _configure(train(splits=splits, stage="stage1", **training), "train-stage1")
    # The seed's stage order: the smoke run must pass before the expensive models start.
    vgg16 = _configure(
        train(splits=splits, stage="stage2-vgg16", weights=weights, **training),
        "train-stage2-vgg16",
    ).after(stage1)
    resnet50 = _configure(
        train(splits=splits, stage="stage2-resnet50", weights=weights, **training),
        "train-stage2-resnet50",
    ).after(stage1)
    stage3 = _configure(
        train(splits=splits, stage="stage3", weights=weights, **training), "train-stage3"
    ).after(vgg16, resnet50)
    for task in (stage1, vgg16, resnet50, stage3):
        _launches_a_job(task)
    evaluation = _configure(
        evaluate(
            splits=splits,
            stage1=stage1.outputs["model"],
            stage2_vgg16=vgg16.outputs["model"],
            stage2_resnet50=resnet50.outputs["model"],
            stage3=stage3.outputs["model"],
        ),
        "evaluate",
    )
    return PipelineOutputs(
        images=ingest_task.outputs["images"],
        splits=splits,
        stage1=stage1.outputs["model"],
        stage2_vgg16=vgg16.outputs["model"],
        stage2_resnet50=resnet50.outputs["model"],
        stage3=stage3.outputs["model"],
        evaluation=evaluation.outputs["evaluation"],
    )
