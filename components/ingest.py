"""Ingest component: GLDv2-style metadata in, validated images + manifest out."""
# No `from __future__ import annotations`: KFP reads the real annotation objects.

from kfp.dsl import Dataset, Metrics, Output

from components.base import landmarks_component


@landmarks_component
def ingest(
    images: Output[Dataset],
    stats: Output[Metrics],
    metadata: str = "",
    labels: str = "",
    images_dir: str = "",
    workers: int = 32,
    timeout_s: float = 30.0,
    retries: int = 4,
    min_size: int = 32,
    limit: int = 0,
    embedded_classes: int = 6,
    embedded_images_per_class: int = 40,
    seed: int = 42,
):
    """Download (or look up) every image of a metadata CSV, validate and deduplicate it.

    Args:
        metadata: `id,url,landmark_id` CSV, local path or gs://, s3://, minio:// URI. Empty:
            the embedded synthetic dataset, generated and served on 127.0.0.1 inside this step.
        images: Output directory: images, manifest.csv, summary.json, labels.csv.
        stats: Counts per status, shown in the KFP UI.
        labels: Optional `landmark_id,category` CSV for class names.
        images_dir: Optional local directory of GLDv2 tar shards or a/b/c/<id>.jpg files
            to read instead of downloading.
        workers: Concurrent downloads.
        timeout_s: Per-request timeout in seconds.
        retries: Retries per image for transient failures.
        min_size: Minimum width and height in pixels of a kept image.
        limit: Only the first N rows (0: all).
        embedded_classes: Landmarks of the embedded dataset (2-10).
        embedded_images_per_class: Valid images per landmark of the embedded dataset.
        seed: Seed of the embedded dataset.
    """
    import contextlib

    from landmarks.ingest import IngestOptions, run_ingest
    from landmarks.synthetic import embedded_source

    with contextlib.ExitStack() as stack:
        if not metadata:
            source = stack.enter_context(
                embedded_source(
                    classes=embedded_classes, images_per_class=embedded_images_per_class, seed=seed
                )
            )
            metadata, labels = source.metadata, source.labels
        result = run_ingest(
            IngestOptions(
                metadata=metadata,
                out=images.path,
                labels=labels or None,
                images_dir=images_dir or None,
                workers=workers,
                timeout=timeout_s,
                retries=retries,
                min_size=min_size,
                limit=limit or None,
            )
        )
    for name, value in result.counts.items():
        stats.log_metric(name, value)
