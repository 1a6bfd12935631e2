"""ingest -> split -> train-stage1 -> train-stage2 (VGG16, ResNet50) -> train-stage3 -> evaluate."""
# No `from __future__ import annotations`: KFP reads the real annotation objects.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset

from components.ingest import ingest
from components.split import split

PIPELINE_NAME = "landmark-recognition"


class PipelineOutputs(NamedTuple):
    images: Dataset
    splits: Dataset


def _configure(task: dsl.PipelineTask, name: str) -> dsl.PipelineTask:
    # Unbuffered output so long steps stream their progress to the KFP log view.
    task.set_display_name(name)
    task.set_env_variable("PYTHONUNBUFFERED", "1")
    return task


@dsl.pipeline(name=PIPELINE_NAME, description=__doc__)
def landmark_pipeline(
    metadata: str,
    labels: str = "",
    images_dir: str = "",
    ingest_limit: int = 0,
    ingest_workers: int = 32,
    min_images: int = 3,
    top_k: int = 0,
    max_per_class: int = 0,
    seed: int = 42,
) -> PipelineOutputs:
    """Landmark recognition from Google Landmarks-style metadata.

    Args:
        metadata: `id,url,landmark_id` CSV (local path or gs://).
        labels: Optional `landmark_id,category` CSV.
        images_dir: Optional directory of GLDv2 tar shards or unpacked images.
        ingest_limit: Only ingest the first N rows (0: all).
        ingest_workers: Concurrent downloads.
        min_images: Keep landmarks with at least this many valid images.
        top_k: Keep the K landmarks with most images (0: all).
        max_per_class: Cap on images per landmark (0: none).
        seed: Seed of the split.
    """
    ingest_task = _configure(
        ingest(
            metadata=metadata,
            labels=labels,
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
    return PipelineOutputs(
        images=ingest_task.outputs["images"], splits=split_task.outputs["splits"]
    )
