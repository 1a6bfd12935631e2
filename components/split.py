"""Split component: stratified train / validation / test class folders and a label map."""
# No `from __future__ import annotations`: KFP reads the real annotation objects.

from kfp.dsl import Dataset, Input, Metrics, Output

from components.base import landmarks_component


@landmarks_component
def split(
    images: Input[Dataset],
    splits: Output[Dataset],
    stats: Output[Metrics],
    min_images: int = 3,
    top_k: int = 0,
    max_per_class: int = 0,
    train_ratio: float = 0.8,
    validation_ratio: float = 0.1,
    test_ratio: float = 0.1,
    seed: int = 42,
):
    """Filter landmarks and split their images, identical images kept together.

    Args:
        images: The ingest output.
        splits: Output directory: train/, validation/, test/, manifest.csv, label_map.csv.
        stats: Classes and images per split, shown in the KFP UI.
        min_images: Keep landmarks with at least this many valid images.
        top_k: Keep only the K landmarks with most images (0: all).
        max_per_class: Cap on images per landmark (0: no cap).
        train_ratio: Share of each class for training.
        validation_ratio: Share for validation.
        test_ratio: Share for test.
        seed: Makes the split reproducible.
    """
    from landmarks.split import SplitOptions, run_split

    result = run_split(
        SplitOptions(
            ingest_dir=images.path,
            out=splits.path,
            min_images=min_images,
            top_k=top_k or None,
            max_per_class=max_per_class or None,
            ratios=(train_ratio, validation_ratio, test_ratio),
            seed=seed,
        )
    )
    for name, value in result.stats.items():
        stats.log_metric(name, value)
