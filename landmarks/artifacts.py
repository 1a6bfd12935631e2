"""The names of the files one step writes and a later step (or a person) reads.

Ingest, split, training and evaluation hand each other directories; what those directories
hold is a contract between the steps, so each name is defined here once and every writer
and reader imports it. Plain constants, no imports: anything may depend on this module.
"""

from __future__ import annotations

# An ingest output directory (`landmarks.ingest`): its images under images/, and
INGEST_MANIFEST = "manifest.csv"  # one row per input image: id, landmark_id, status, sha256, ...
INGEST_LABELS = "labels.csv"  # landmark_id,name (only when the run was given names)
INGEST_SUMMARY = "summary.json"

# A split directory (`landmarks.split`): train/, validation/, test/ class folders, and
SPLIT_MANIFEST = "manifest.csv"  # id,landmark_id,class_index,split,sha256,path
SPLIT_SUMMARY = "summary.json"
# class_index,landmark_id,name; also copied beside the model, which outputs class indices.
LABEL_MAP = "label_map.csv"

# A model directory (`landmarks.train`), beside its copy of LABEL_MAP:
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"  # per-epoch metrics; the launcher reads the last epoch's
CONFIG_FILE = "config.json"  # the resolved training config (image size, architecture)

# An evaluation's output folder (`landmarks.evaluate`):
EVALUATION_SUMMARY_FILE = "summary.json"  # every model's scores; the pipeline's runner reads it
REPORT_HTML_FILE = "report.html"
REPORT_MD_FILE = "report.md"
WORST_FILE = "worst.png"  # the most confident mistakes, as one picture
# and per model, under <name>/:
PREDICTIONS_FILE = "predictions.csv"  # id, truth, prediction, confidence, the top k
METRICS_FILE = "metrics.json"  # per-class precision and recall, the confusion matrix
