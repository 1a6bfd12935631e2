"""Build an ingest output directory directly, as the ingest stage would leave it.

The split tests depend on the ingest *contract* (manifest.csv, images/a/b/c/<id>.jpg,
labels.csv), not on the ingest code.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from PIL import Image

from landmarks.artifacts import INGEST_LABELS, INGEST_MANIFEST, INGEST_SUMMARY

MANIFEST_COLUMNS = (
    "id",
    "url",
    "landmark_id",
    "status",
    "reason",
    "duplicate_of",
    "sha256",
    "width",
    "height",
    "path",
)


def tiny_jpeg(n: int) -> bytes:
    """An 8x8 JPEG whose bytes differ for every `n`."""
    colour = (n * 37 % 256, n * 91 % 256, n * 13 % 256)
    image = Image.new("RGB", (8, 8), colour)
    image.putpixel((n % 8, n // 8 % 8), (255 - colour[0], n % 256, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, comment=str(n).encode())
    return buffer.getvalue()


class IngestDir:
    """Rows added one at a time; `write()` produces manifest.csv (and labels.csv)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: list[dict[str, str]] = []
        self._n = 0

    def _next_id(self) -> str:
        self._n += 1
        return hashlib.sha256(f"image-{self._n}".encode()).hexdigest()[:16]

    def add(self, landmark_id: int | str, data: bytes | None = None, status: str = "ok") -> str:
        """One row; an `ok` row gets its image written (unique bytes unless `data` is given)."""
        image_id = self._next_id()
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        row.update(id=image_id, url=f"http://example.invalid/{image_id}.jpg")
        row.update(landmark_id=str(landmark_id), status=status)
        if status == "ok":
            data = data if data is not None else tiny_jpeg(self._n)
            rel = f"images/{image_id[0]}/{image_id[1]}/{image_id[2]}/{image_id}.jpg"
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            row.update(sha256=hashlib.sha256(data).hexdigest(), width="8", height="8", path=rel)
        elif status == "failed":
            row.update(reason="http 404")
        self.rows.append(row)
        return image_id

    def add_class(self, landmark_id: int, count: int) -> list[str]:
        return [self.add(landmark_id) for _ in range(count)]

    def write(self, labels: dict[int, str] | None = None) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / INGEST_MANIFEST).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)
        (self.root / INGEST_SUMMARY).write_text(f'{{"rows": {len(self.rows)}}}\n')
        if labels is not None:
            with (self.root / INGEST_LABELS).open("w", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(["landmark_id", "name"])
                writer.writerows(sorted(labels.items()))
        return str(self.root)


def make_ingest(root: Path, classes: dict[int, int], labels: dict[int, str] | None = None) -> str:
    """An ingest directory with `count` distinct ok images per landmark, plus a failed row."""
    ingest = IngestDir(root)
    for landmark_id, count in classes.items():
        ingest.add_class(landmark_id, count)
    ingest.add(next(iter(classes)), status="failed")
    return ingest.write(labels)
