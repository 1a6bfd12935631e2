"""The file names steps hand each other are a published contract: pinned here, once.

Every other module and test imports them from `landmarks.artifacts`; this test is the one
place that spells them, so renaming one (which breaks directories already written, KFP
runs in flight and people's scripts) fails here instead of passing silently.
"""

from __future__ import annotations

from pathlib import Path

from landmarks import artifacts


def test_file_names_handed_between_steps_are_the_published_ones() -> None:
    assert {k: v for k, v in vars(artifacts).items() if k.isupper()} == {
        "INGEST_MANIFEST": "manifest.csv",
        "INGEST_LABELS": "labels.csv",
        "INGEST_SUMMARY": "summary.json",
        "SPLIT_MANIFEST": "manifest.csv",
        "SPLIT_SUMMARY": "summary.json",
        "LABEL_MAP": "label_map.csv",
        "MODEL_FILE": "model.keras",
        "HISTORY_FILE": "history.json",
        "CONFIG_FILE": "config.json",
        "EVALUATION_SUMMARY_FILE": "summary.json",
        "REPORT_HTML_FILE": "report.html",
        "REPORT_MD_FILE": "report.md",
        "WORST_FILE": "worst.png",
        "PREDICTIONS_FILE": "predictions.csv",
        "METRICS_FILE": "metrics.json",
    }


def test_the_names_module_imports_nothing_of_the_project() -> None:
    # Anything may import it (components inside images, the TensorFlow-free launcher).
    source = Path(artifacts.__file__).read_text(encoding="utf-8")
    assert "\nimport " not in source
    assert [line for line in source.splitlines() if line.startswith("from ")] == [
        "from __future__ import annotations"
    ]
