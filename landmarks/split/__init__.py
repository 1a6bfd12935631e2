"""The split stage: filter landmarks, split images into train / validation / test class folders."""

from landmarks.split.core import (
    MANIFEST,
    SPLITS,
    SUMMARY,
    SplitOptions,
    SplitResult,
    SplitRow,
    allocate,
    read_split_manifest,
    run_split,
)
from landmarks.split.label_map import (
    LABEL_MAP,
    LABEL_MAP_COLUMNS,
    LabelEntry,
    LabelMap,
    parse_label_map,
    read_label_map,
)

__all__ = [
    "LABEL_MAP",
    "LABEL_MAP_COLUMNS",
    "MANIFEST",
    "SPLITS",
    "SUMMARY",
    "LabelEntry",
    "LabelMap",
    "SplitOptions",
    "SplitResult",
    "SplitRow",
    "allocate",
    "parse_label_map",
    "read_label_map",
    "read_split_manifest",
    "run_split",
]
