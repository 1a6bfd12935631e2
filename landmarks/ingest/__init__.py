"""Ingest stage: GLDv2-style metadata in; checked, deduplicated images and a manifest out.

`run_ingest(IngestOptions(...))` is the entry point; the output layout other stages read
is described in `landmarks.ingest.manifest`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from landmarks.ingest.manifest import MANIFEST_COLUMNS

if TYPE_CHECKING:
    from landmarks.ingest.run import IngestOptions, IngestResult, run_ingest

__all__ = ["MANIFEST_COLUMNS", "IngestOptions", "IngestResult", "run_ingest"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the split stage reads the output layout from
    # `landmarks.ingest.manifest` and should not pay for pandas and requests.
    if name in ("IngestOptions", "IngestResult", "run_ingest"):
        from landmarks.ingest import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
