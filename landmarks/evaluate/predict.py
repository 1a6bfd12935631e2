"""Read a split and a trained model, and predict the test images in streamed batches.

TensorFlow is imported inside the functions that need it, so `landmarks --help` and the
pure metric code stay light. Files in an object store (gs://, s3://, minio://) are staged
to local disk through the storage layer first: TensorFlow has no s3:// file system and its
gs:// one ignores STORAGE_EMULATOR_HOST.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from landmarks import storage
from landmarks.artifacts import SPLIT_MANIFEST
from landmarks.errors import InputError
from landmarks.split.label_map import LabelMap
from landmarks.split.plan import SPLITS
from landmarks.train import HISTORY_FILE, MODEL_FILE

log = logging.getLogger(__name__)


# The split's layout is the split stage's to name; the trainer writes config.json.
MANIFEST_FILE = SPLIT_MANIFEST
TEST_DIR = SPLITS[2]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def readable_name(name: str) -> str:
    """`http://commons.wikimedia.org/wiki/Category:Eiffel_Tower` -> `Eiffel Tower`."""
    name = name.strip()
    if "Category:" in name:
        name = name.rsplit("Category:", 1)[1]
    elif name.startswith(("http://", "https://")):
        name = name.rstrip("/").rsplit("/", 1)[-1]
    return urllib.parse.unquote(name).replace("_", " ").strip()


def display(label_map: LabelMap, class_index: int) -> str:
    """A short label for a class: its readable name and its landmark id."""
    lid = label_map.landmark_ids[class_index]
    name = readable_name(label_map.names[class_index])
    return f"{name} ({lid})" if name and name != lid else lid


def check_same_classes(model_map: LabelMap, split_map: LabelMap) -> None:
    """The model's output index i must mean the same landmark as the split's class i."""
    for i, (mine, theirs) in enumerate(
        zip(model_map.landmark_ids, split_map.landmark_ids, strict=False)
    ):
        if mine != theirs:
            raise InputError(
                f"class_index {i} is landmark {mine} here but {theirs} in {split_map.source}; "
                "the model was trained on a different split",
                file=model_map.source,
                row=i + 2,
                field="landmark_id",
            )
    if len(model_map) != len(split_map):
        raise InputError(
            f"{len(model_map)} classes here but {len(split_map)} in {split_map.source}; "
            "the model was trained on a different split",
            file=model_map.source,
        )


def read_json(uri: str, *, required: bool) -> Any:
    if not storage.exists(uri):
        if required:
            raise InputError("file not found", file=uri)
        return None
    try:
        return json.loads(storage.read_text(uri))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"not valid JSON ({err})", file=uri) from err


def read_history(model_dir: str) -> list[dict[str, float]]:
    """Per-epoch training history; empty when the trainer left none (curves are skipped)."""
    uri = storage.join(model_dir, HISTORY_FILE)
    data = read_json(uri, required=False)
    if data is None:
        log.warning("%s not found: the report will have no training curves for it", uri)
        return []
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise InputError("expected a list of per-epoch objects", file=uri)
    return data


def configured_image_size(config: dict[str, Any] | None, uri: str) -> int | None:
    if not config or "image_size" not in config:
        return None
    size = config["image_size"]
    if isinstance(size, list | tuple) and len(size) == 2 and size[0] == size[1]:
        size = size[0]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InputError(f"expected a positive integer, got {size!r}", file=uri, field="image_size")
    return size


@dataclass(frozen=True)
class TestImage:
    """One image to predict: where it came from, where it lies locally, and its truth."""

    image_id: str
    source: str  # as the user knows it (local path or URI), for messages and reports
    local_path: str
    landmark_id: str | None  # None for a distractor
    class_index: int  # -1 for a distractor


def stage_tree(root: str, workdir: Path, name: str) -> Path:
    """A local copy of `root` (a local root is used in place)."""
    if storage.is_remote(root):
        log.info("staging %s to local disk", root)
    return storage.download_tree(root, str(workdir / name))


def _image_files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_test_images(split_dir: str, label_map: LabelMap, workdir: Path) -> list[TestImage]:
    """`test/<landmark_id>/<id>.jpg` under the split, sorted by id (the GAP tie-break)."""
    manifest = storage.join(split_dir, MANIFEST_FILE)
    if not storage.exists(manifest):
        # The split stage writes its manifest last: without it the split is unfinished.
        raise InputError("not a complete split: manifest.csv is missing", file=manifest)
    test_root = storage.join(split_dir, TEST_DIR)
    local = stage_tree(test_root, workdir, "split-test")
    if not local.is_dir():
        raise InputError("test directory not found", file=test_root)
    index = label_map.index_of()
    images = []
    for path in _image_files(local):
        rel = path.relative_to(local)
        source = storage.join(test_root, rel.as_posix())
        if len(rel.parts) != 2:
            raise InputError(
                "expected test/<landmark_id>/<id>.jpg", file=source, field="landmark_id"
            )
        lid = rel.parts[0]
        if lid not in index:
            raise InputError(
                f"landmark {lid} is not in {label_map.source}", file=source, field="landmark_id"
            )
        images.append(TestImage(path.stem, source, str(path), lid, index[lid]))
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found", file=test_root)
    return sorted(images, key=lambda im: (im.image_id, im.source))


def list_distractors(root: str, workdir: Path) -> list[TestImage]:
    """Images under `root` that show no landmark; every prediction on them is wrong."""
    local = stage_tree(root, workdir, "distractors")
    files = _image_files(local) if local.is_dir() else []
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found", file=root)
    images = [
        TestImage(p.stem, storage.join(root, p.relative_to(local).as_posix()), str(p), None, -1)
        for p in files
    ]
    return sorted(images, key=lambda im: (im.image_id, im.source))


def load_model(model_dir: str) -> Any:
    """Load a trained model (local or in an object store) with the trainer's own loader."""
    from landmarks.train import load_model as load_trained

    uri = storage.join(model_dir, MODEL_FILE)
    if not storage.exists(uri):
        raise InputError("model file not found; did training finish?", file=uri)
    try:
        return load_trained(model_dir)
    except Exception as err:  # tf_keras raises many types for a bad file
        raise InputError(f"cannot load the model: {err}", file=uri) from err


def model_image_size(model: Any, configured: int | None, model_uri: str, config_uri: str) -> int:
    """The square input size to resize to: config.json's, checked against the model's."""
    shape = tuple(model.input_shape)
    fixed = shape[1] if len(shape) == 4 and shape[1] is not None and shape[1] == shape[2] else None
    if configured is not None and fixed is not None and configured != fixed:
        raise InputError(
            f"image_size {configured} but the model takes {fixed}x{fixed} inputs",
            file=config_uri,
            field="image_size",
        )
    size = configured or fixed
    if size is None:
        raise InputError(
            f"model input shape {shape} has no fixed size and config.json names none",
            file=model_uri,
        )
    return size


@dataclass(frozen=True)
class Predictions:
    """The k best classes per image (best first) and their probabilities."""

    topk: np.ndarray  # (images, k) int
    probs: np.ndarray  # (images, k) float
    from_logits: bool  # the model's outputs were not probabilities; softmax was applied

    @property
    def top1(self) -> np.ndarray:
        return self.topk[:, 0]

    @property
    def confidence(self) -> np.ndarray:
        return self.probs[:, 0]


def _decode(path: Any, size: int) -> Any:
    """Image file -> float32 [size, size, 3], pixels 0..255, exactly as the trainer feeds
    its models: any difference shows up as lost accuracy (a plain decode-then-resize
    changed 5% of a LeNet's top-1 answers)."""
    from landmarks.train.tfdata import load_image

    return load_image(path, size)


def _find_unreadable(images: Sequence[TestImage], size: int, err: Exception) -> InputError:
    """Name the image in a failed batch that TensorFlow cannot decode."""
    import tensorflow as tf

    for image in images:
        try:
            _decode(tf.constant(image.local_path), size)
        except (tf.errors.OpError, ValueError) as bad:
            reason = getattr(bad, "message", str(bad)).strip().splitlines()[0]
            return InputError(f"cannot read image: {reason}", file=image.source)
    return InputError(f"cannot read one of {len(images)} images ({err})", file=images[0].source)


def predict(
    model: Any,
    images: Sequence[TestImage],
    image_size: int,
    *,
    batch_size: int = 64,
    k: int = 5,
    desc: str = "predict",
) -> Predictions:
    """Stream `images` through `model` in batches with tf.data; keep only the top `k`.

    Memory stays at a few batches of pixels plus `k` numbers per image, whatever the
    split's size. `k` is capped at the number of classes.
    """
    import tensorflow as tf

    n_classes = int(model.output_shape[-1])
    k = min(k, n_classes)
    dataset = (
        tf.data.Dataset.from_tensor_slices([im.local_path for im in images])
        .map(lambda p: _decode(p, image_size), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .prefetch(2)
    )
    topk: list[np.ndarray] = []
    raw: list[np.ndarray] = []
    lse: list[np.ndarray] = []
    probabilities = True
    batches = math.ceil(len(images) / batch_size)
    iterator = iter(dataset)
    with tqdm(total=len(images), desc=desc, unit="img", mininterval=2.0) as bar:
        for b in range(batches):
            try:
                pixels = next(iterator)
            except tf.errors.OpError as err:
                chunk = images[b * batch_size : (b + 1) * batch_size]
                raise _find_unreadable(chunk, image_size, err) from err
            scores = np.asarray(model(pixels, training=False), dtype=np.float64)
            if scores.ndim != 2 or scores.shape[1] != n_classes:
                raise ValueError(f"model returned shape {scores.shape}, expected (n, {n_classes})")
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            topk.append(order)
            raw.append(np.take_along_axis(scores, order, axis=1))
            peak = scores.max(axis=1, keepdims=True)
            lse.append((peak + np.log(np.exp(scores - peak).sum(axis=1, keepdims=True)))[:, 0])
            probabilities &= bool(
                (scores >= 0).all() and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)
            )
            bar.update(scores.shape[0])
    top = np.concatenate(topk)
    values = np.concatenate(raw)
    if not probabilities:
        # Softmax is monotonic, so the ranking stands; only the confidences change.
        log.info("%s: model outputs are not probabilities; applying softmax", desc)
        values = np.exp(values - np.concatenate(lse)[:, None])
    return Predictions(topk=top, probs=values, from_logits=not probabilities)


def iter_prediction_rows(
    images: Iterable[TestImage], preds: Predictions, label_map: LabelMap
) -> Iterable[dict[str, str]]:
    """Rows of `predictions.csv`: id, truth, prediction, confidence, the top k."""
    ids = label_map.landmark_ids
    for i, image in enumerate(images):
        top = preds.topk[i]
        yield {
            "id": image.image_id,
            "true_landmark_id": image.landmark_id or "",
            "predicted_landmark_id": ids[top[0]],
            "confidence": f"{preds.probs[i, 0]:.6f}",
            "correct": str(int(ids[top[0]] == image.landmark_id)),
            "top5": " ".join(f"{ids[c]}:{p:.6f}" for c, p in zip(top, preds.probs[i], strict=True)),
            "path": image.source,
        }


def predictions_csv(images: Sequence[TestImage], preds: Predictions, label_map: LabelMap) -> str:
    fields = (
        "id",
        "true_landmark_id",
        "predicted_landmark_id",
        "confidence",
        "correct",
        "top5",
        "path",
    )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(iter_prediction_rows(images, preds, label_map))
    return out.getvalue()
