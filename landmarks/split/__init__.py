"""The split stage: filter landmarks, split images into train / validation / test class folders."""

from landmarks.split.core import (
    LABEL_MAP,
    MANIFEST,
    SPLITS,
    SUMMARY,
    LabelEntry,
    SplitOptions,
    SplitResult,
    SplitRow,
    allocate,
    read_label_map,
    read_split_manifest,
    run_split,
)

__all__ = [
    "LABEL_MAP",
    "MANIFEST",
    "SPLITS",
    "SUMMARY",
    "LabelEntry",
    "SplitOptions",
    "SplitResult",
    "SplitRow",
    "allocate",
    "read_label_map",
    "read_split_manifest",
    "run_split",
]
