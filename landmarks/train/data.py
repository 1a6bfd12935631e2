"""Read a split directory: its label map and the image files of each subset, checked.

A split directory (made by the split stage) holds `train/<landmark_id>/<id>.jpg`,
`validation/...`, `test/...`, `label_map.csv` (`class_index,landmark_id,name`) and
`manifest.csv`. Class indices come from the label map, never from directory order: a
model's output `i` is the landmark in row `class_index == i`.

Everything here is plain Python (no TensorFlow), so the checks run, and fail on every
worker alike, before the workers join a distributed cluster.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from landmarks import storage
from landmarks.artifacts import LABEL_MAP
from landmarks.errors import InputError
from landmarks.split.label_map import LabelMap
from landmarks.split.label_map import read_label_map as read_checked_label_map

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class Subset:
    """The images of one subset (train or validation) with their class indices."""

    name: str
    paths: tuple[str, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class SplitData:
    root: str  # where the images are read from: a local directory or gs://
    label_map: LabelMap
    train: Subset
    validation: Subset


def read_label_map(split_root: str) -> LabelMap:
    """The split's label map, checked by the split stage's own parser."""
    uri = storage.join(split_root, LABEL_MAP)
    # Checked here too, to say what a split directory is: the usual mistake is a wrong path.
    if not storage.exists(uri):
        raise InputError(
            "missing: a split directory holds train/, validation/ and label_map.csv", file=uri
        )
    return read_checked_label_map(split_root)


def _scan_subset(
    root: str,
    name: str,
    label_map: LabelMap,
    *,
    required: bool,
    max_per_class: int = 0,
) -> Subset:
    base = storage.join(root, name)
    index = label_map.index_of()
    per_class: dict[str, list[str]] = {}
    for rel in storage.list_files(base):
        parts = rel.split("/")
        if any(part.startswith(".") for part in parts):
            continue  # editor and OS droppings (.DS_Store, .ipynb_checkpoints)
        path = storage.join(base, rel)
        if len(parts) != 2:
            raise InputError(
                f"images belong in {name}/<landmark_id>/<image>.jpg, one folder level deep",
                file=path,
            )
        folder, filename = parts
        if folder not in index:
            raise InputError(
                f"class folder {folder!r} is not in {LABEL_MAP} "
                f"({label_map.num_classes} classes); re-run the split or remove the folder",
                file=storage.join(base, folder),
            )
        if not filename.lower().endswith(IMAGE_SUFFIXES):
            raise InputError(f"not a JPEG file (expected {'/'.join(IMAGE_SUFFIXES)})", file=path)
        per_class.setdefault(folder, []).append(path)
    if required and not per_class:
        raise InputError(f"no images: the {name} subset is missing or empty", file=base)
    paths: list[str] = []
    labels: list[int] = []
    for landmark in label_map.landmark_ids:
        files = sorted(per_class.get(landmark, []))
        if required and not files:
            raise InputError(
                f"class {landmark!r} (class_index {index[landmark]}) has no {name} images; "
                f"every class in {LABEL_MAP} needs at least one",
                file=storage.join(base, landmark),
            )
        if max_per_class:
            files = files[:max_per_class]
        paths.extend(files)
        labels.extend([index[landmark]] * len(files))
    return Subset(name, tuple(paths), tuple(labels))


def stage_locally(split_root: str, cache_dir: str | None = None) -> str:
    """Where tf.data should read the split from.

    tf.data reads local paths and real gs:// in place. TensorFlow has no s3:// file system
    and its gs:// one ignores STORAGE_EMULATOR_HOST, so a minio://, s3:// or emulated gs://
    split is first copied to local disk through the storage layer (a rerun reuses what is
    already there).
    """
    if storage.tensorflow_reads(split_root):
        return split_root
    digest = hashlib.sha1(split_root.encode()).hexdigest()[:12]
    dest = Path(cache_dir or tempfile.gettempdir()) / f"landmarks-split-{digest}"
    log.info("staging %s to %s", split_root, dest)
    for part in ("train", "validation"):
        storage.download_tree(storage.join(split_root, part), str(dest / part))
    storage.write_bytes(
        str(dest / LABEL_MAP), storage.read_bytes(storage.join(split_root, LABEL_MAP))
    )
    return str(dest)


def load_split(split_root: str, max_images_per_class: int = 0) -> SplitData:
    """The label map and the checked train / validation file lists of a split."""
    label_map = read_label_map(split_root)
    train = _scan_subset(
        split_root, "train", label_map, required=True, max_per_class=max_images_per_class
    )
    validation = _scan_subset(
        split_root, "validation", label_map, required=False, max_per_class=max_images_per_class
    )
    log.info(
        "split %s: %d classes, %d train and %d validation images",
        split_root,
        label_map.num_classes,
        len(train),
        len(validation),
    )
    return SplitData(split_root, label_map, train, validation)
