"""Tiny split directories for trainer tests: colour-coded classes a model learns in a few steps."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from landmarks.artifacts import LABEL_MAP, SPLIT_MANIFEST

# Distinct hues, so even LeNet on 32x32 images separates the classes within an epoch or two.
COLOURS = [(220, 40, 40), (40, 200, 60), (50, 70, 230), (230, 210, 40), (160, 50, 200)]


def jpeg_bytes(
    colour: tuple[int, int, int], size: int, rng: np.random.Generator, noise: float = 25.0
) -> bytes:
    pixels = np.clip(np.array(colour) + rng.normal(0, noise, (size, size, 3)), 0, 255)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def make_split(
    root: Path,
    classes: int = 3,
    train: int = 8,
    validation: int = 3,
    size: int = 32,
    seed: int = 0,
    noise: float = 25.0,
) -> Path:
    """`root` as the split stage writes it: train/ validation/ test/, label_map.csv, manifest.csv.

    Landmark ids are deliberately not in string order ("10" < "7"): the label map, not the
    directory listing, decides class indices. More `noise` makes the classes harder to tell
    apart, so learning takes several epochs instead of one.
    """
    rng = np.random.default_rng(seed)
    landmark_ids = [str(7 + 3 * k) for k in range(classes)]  # 7, 10, 13, ...
    manifest = [("id", "landmark_id", "split", "path")]
    for subset, count in (("train", train), ("validation", validation), ("test", validation)):
        for k, landmark in enumerate(landmark_ids):
            folder = root / subset / landmark
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image_id = f"{k:02x}{i:06x}{subset[:2]}"
                (folder / f"{image_id}.jpg").write_bytes(
                    jpeg_bytes(COLOURS[k % len(COLOURS)], size, rng, noise)
                )
                manifest.append((image_id, landmark, subset, f"{subset}/{landmark}/{image_id}.jpg"))
    with (root / LABEL_MAP).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class_index", "landmark_id", "name"])
        for index, landmark in enumerate(landmark_ids):
            writer.writerow([index, landmark, f"Landmark {landmark}"])
    with (root / SPLIT_MANIFEST).open("w", newline="") as handle:
        csv.writer(handle).writerows(manifest)
    return root
