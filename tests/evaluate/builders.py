"""Tiny splits and fixed-weight tf_keras models whose predictions are known exactly.

A colour model averages the pixels, scales them to 0-1 and applies a Dense layer whose
kernel is `scale * permutation`: a solid red image of intensity r gets logits
`(scale * r / 255, 0, 0)` (permuted), so both the predicted class and the ranking of
confidences follow from the colours we paint.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from landmarks.artifacts import CONFIG_FILE, HISTORY_FILE, LABEL_MAP, MODEL_FILE, SPLIT_MANIFEST

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# class_index, landmark_id, name. Channel i (R, G, B) means class i for the "true" model.
LABELS = [
    (0, "101", "http://commons.wikimedia.org/wiki/Category:Red_Fort"),
    (1, "202", "http://commons.wikimedia.org/wiki/Category:Green_Bridge"),
    (2, "303", "Blue Mosque"),
]
IMAGE_SIZE = 16


def write_image(path: Path, rgb: tuple[int, int, int], size: int = 24) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), rgb).save(path, format="JPEG", quality=95)


def write_label_map(path: Path, labels: Sequence[tuple[int, str, str]] = LABELS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class_index", "landmark_id", "name"])
        writer.writerows(labels)


def make_split(root: Path, images: dict[str, dict[str, tuple[int, int, int]]]) -> Path:
    """`images`: landmark_id -> {image id: colour}, written as test/<lid>/<id>.jpg."""
    for lid, members in images.items():
        for image_id, rgb in members.items():
            write_image(root / "test" / lid / f"{image_id}.jpg", rgb)
    write_label_map(root / LABEL_MAP)
    index = {lid: i for i, lid, _ in LABELS}
    lines = ["id,landmark_id,class_index,split,sha256,path"]
    for lid, members in images.items():
        for image_id in members:
            path = root / "test" / lid / f"{image_id}.jpg"
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{image_id},{lid},{index[lid]},test,{digest},test/{lid}/{image_id}.jpg")
    (root / SPLIT_MANIFEST).write_text("\n".join(lines) + "\n")
    return root


def make_colour_model(
    model_dir: Path,
    *,
    scale: float = 8.0,
    permutation: Sequence[int] = (0, 1, 2),
    softmax: bool = True,
    labels: Sequence[tuple[int, str, str]] = LABELS,
    history_epochs: int = 3,
    config: dict | None = None,
) -> Path:
    """Save a colour model in the trainer's MODEL_DIR layout."""
    import tf_keras

    inputs = tf_keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(inputs)
    x = tf_keras.layers.Rescaling(1 / 255)(x)
    dense = tf_keras.layers.Dense(len(permutation), use_bias=False)
    x = dense(x)
    if softmax:
        x = tf_keras.layers.Softmax()(x)
    model = tf_keras.Model(inputs, x)
    kernel = np.zeros((3, len(permutation)), dtype=np.float32)
    for channel, cls in enumerate(permutation):
        kernel[channel, cls] = scale
    dense.set_weights([kernel])
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / MODEL_FILE)
    write_label_map(model_dir / LABEL_MAP, labels)
    history = [
        {
            "epoch": e + 1,
            "loss": 1.2 / (e + 1),
            "accuracy": 0.5 + 0.1 * e,
            "val_loss": 1.3 / (e + 1) + 0.05,
            "val_accuracy": 0.45 + 0.1 * e,
            "images_per_sec": 700.0,
            "seconds": 1.0,
        }
        for e in range(history_epochs)
    ]
    (model_dir / HISTORY_FILE).write_text(json.dumps(history))
    cfg = {"image_size": IMAGE_SIZE, "model": "colour"} if config is None else config
    (model_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    return model_dir
