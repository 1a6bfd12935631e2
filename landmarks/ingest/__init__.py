"""Ingest stage: GLDv2-style metadata in; checked, deduplicated images and a manifest out.

`run_ingest(IngestOptions(...))` is the entry point; the output layout other stages read
is described in `landmarks.ingest.manifest`.
"""

from landmarks.ingest.manifest import MANIFEST_COLUMNS
from landmarks.ingest.run import IngestOptions, IngestResult, run_ingest

__all__ = ["MANIFEST_COLUMNS", "IngestOptions", "IngestResult", "run_ingest"]
