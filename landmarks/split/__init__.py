"""The split stage: filter landmarks, split images into train / validation / test class folders.

`read` checks the ingest output, `plan` decides (pure, no I/O), `write` copies and swaps the
output in, and `run` ties them together behind `run_split`.
"""

from landmarks.artifacts import LABEL_MAP, SPLIT_MANIFEST, SPLIT_SUMMARY
from landmarks.split.label_map import (
    LABEL_MAP_COLUMNS,
    LabelEntry,
    LabelMap,
    parse_label_map,
    read_label_map,
)
from landmarks.split.plan import SPLITS, IngestImage, Plan, SplitRow, allocate, plan_split
from landmarks.split.read import read_split_manifest
from landmarks.split.run import SplitOptions, SplitResult, run_split

__all__ = [
    "LABEL_MAP",
    "LABEL_MAP_COLUMNS",
    "SPLITS",
    "SPLIT_MANIFEST",
    "SPLIT_SUMMARY",
    "IngestImage",
    "LabelEntry",
    "LabelMap",
    "Plan",
    "SplitOptions",
    "SplitResult",
    "SplitRow",
    "allocate",
    "parse_label_map",
    "plan_split",
    "read_label_map",
    "read_split_manifest",
    "run_split",
]
