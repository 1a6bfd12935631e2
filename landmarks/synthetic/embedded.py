"""The embedded default dataset as a data source: generated, then served on 127.0.0.1.

When a pipeline run names no metadata, ingest generates the synthetic dataset in a
scratch directory and downloads it from a server on the loopback interface, so the run
needs no cloud and no cluster data, yet ingest still exercises its real HTTP path. The
same holds on a laptop (`make demo`) and in a pod (`make kind-test`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from landmarks.synthetic.generate import CATEGORY_CSV, TRAIN_CSV, generate
from landmarks.synthetic.serve import serve


@dataclasses.dataclass(frozen=True)
class EmbeddedSource:
    metadata: str
    labels: str
    base_url: str


@contextmanager
def embedded_source(
    *, classes: int = 6, images_per_class: int = 40, size: int = 128, seed: int = 0
) -> Iterator[EmbeddedSource]:
    """Generate the embedded dataset and serve it for as long as the block runs."""
    with tempfile.TemporaryDirectory(prefix="landmarks-embedded-") as tmp, serve(tmp) as url:
        root = Path(tmp)
        generate(
            root,
            classes=classes,
            images_per_class=images_per_class,
            size=size,
            seed=seed,
            base_url=url,
        )
        yield EmbeddedSource(str(root / TRAIN_CSV), str(root / CATEGORY_CSV), url)
