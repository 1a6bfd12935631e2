"""Write the embedded dataset: synthetic landmark photos in Google Landmarks v2 format.

Layout of `out_dir` (the same as GLDv2 after unpacking its tar shards):

- `train.csv`: `id,url,landmark_id`; ids are 16 lowercase hex characters, URLs
  `{base_url}/{a}/{b}/{c}/{id}.jpg`, landmark ids non-contiguous integers.
- `train_label_to_category.csv`: `landmark_id,category` with Wikimedia category URLs.
- `images/<a>/<b>/<c>/<id>.jpg`, where a, b, c are the first three characters of the id.

Each photo is one design from `designs.py` seen from a random viewpoint (scale, shift,
rotation, perspective), recoloured, set in a random scene (sky, horizon, clouds, trees)
and degraded by noise, blur and JPEG quality. With `defects=True` a few rows carry the
faults real crawls have, so the demo exercises ingest's checks: two URLs that 404 (no
file), one truncated JPEG, and one byte-identical copy of another image under a new id.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from landmarks.errors import LandmarksError
from landmarks.synthetic.designs import DESIGNS, GROUND, Design, Palette, Pen

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
TRAIN_CSV = "train.csv"
CATEGORY_CSV = "train_label_to_category.csv"
IMAGES_DIR = "images"
CATEGORY_URL = "http://commons.wikimedia.org/wiki/Category:{name}"
MAX_CLASSES = len(DESIGNS)

_SKIES = (  # (top, bottom) colours: clear day, haze, sunset, overcast, dusk
    ((70, 130, 200), (170, 205, 235)),
    ((150, 180, 210), (215, 225, 235)),
    ((70, 80, 150), (240, 160, 100)),
    ((130, 135, 140), (190, 192, 195)),
    ((30, 40, 80), (110, 100, 140)),
)
_GROUNDS = ((80, 120, 60), (120, 115, 105), (200, 180, 140), (60, 85, 70), (150, 150, 150))


@dataclass(frozen=True)
class Row:
    """One line of train.csv."""

    id: str
    landmark_id: int

    @property
    def rel_path(self) -> str:
        return image_rel_path(self.id)


def image_rel_path(image_id: str) -> str:
    """`0123...` -> `0/1/2/0123....jpg`, the GLDv2 layout."""
    return f"{image_id[0]}/{image_id[1]}/{image_id[2]}/{image_id}.jpg"


def image_url(base_url: str, image_id: str) -> str:
    return f"{base_url.rstrip('/')}/{image_rel_path(image_id)}"


def _image_id(seed: int, class_index: int, index: int | str) -> str:
    digest = hashlib.blake2b(
        f"landmarks-synthetic/{seed}/{class_index}/{index}".encode(), digest_size=8
    )
    return digest.hexdigest()


def _landmark_ids(classes: int, seed: int) -> list[int]:
    """Sparse ids in GLDv2's range (0..203093), ascending so class order follows design order."""
    rng = np.random.default_rng([seed, 0x1A4D])
    return sorted(int(x) for x in rng.choice(np.arange(1, 203_094), size=classes, replace=False))


def _jitter_palette(palette: Palette, rng: np.random.Generator) -> Palette:
    brightness = rng.uniform(0.75, 1.2)
    tint = rng.uniform(0.9, 1.1, size=3)
    out = []
    for colour in palette:
        rgb = np.clip(np.asarray(colour) * brightness * tint, 0, 255).astype(int)
        out.append((int(rgb[0]), int(rgb[1]), int(rgb[2])))
    return out[0], out[1], out[2]


def _perspective_coeffs(dst: np.ndarray, src: np.ndarray) -> list[float]:
    """Coefficients for PIL's PERSPECTIVE transform, which maps output points to input points."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return [float(v) for v in np.linalg.solve(np.asarray(rows), np.asarray(rhs))]


def _background(size: int, horizon: float, rng: np.random.Generator) -> Image.Image:
    top, bottom = (np.asarray(c, dtype=float) for c in _SKIES[rng.integers(len(_SKIES))])
    ground = np.asarray(_GROUNDS[rng.integers(len(_GROUNDS))], dtype=float)
    shift = rng.uniform(-20, 20, size=3)
    t = np.linspace(0.0, 1.0, size)[:, None]
    sky = top + (bottom - top) * t + shift
    land = ground * (0.85 + 0.3 * t) + shift  # lighter towards the viewer
    column = np.where(np.arange(size)[:, None] < horizon, sky, land)
    pixels = np.broadcast_to(column[:, None, :], (size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").convert("RGBA")
    clouds = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(clouds)
    for _ in range(rng.integers(0, 4)):
        cx, cy = rng.uniform(0, size), rng.uniform(0, horizon * 0.6)
        w, h = rng.uniform(0.1, 0.3) * size, rng.uniform(0.04, 0.08) * size
        draw.ellipse(
            (cx - w, cy - h, cx + w, cy + h), fill=(255, 255, 255, int(rng.integers(90, 200)))
        )
    return Image.alpha_composite(image, clouds.filter(ImageFilter.GaussianBlur(size / 40)))


def _trees(image: Image.Image, horizon: float, rng: np.random.Generator) -> None:
    size = image.width
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(0, 3)):
        x = rng.uniform(0, size)
        base = rng.uniform(horizon, size)
        r = rng.uniform(0.03, 0.07) * size
        green = (int(rng.integers(20, 60)), int(rng.integers(70, 120)), int(rng.integers(20, 60)))
        draw.rectangle((x - r / 5, base - r * 1.5, x + r / 5, base), fill=(70, 50, 35, 255))
        draw.ellipse((x - r, base - r * 2.8, x + r, base - r * 1.0), fill=(*green, 255))


def render(design: Design, size: int, rng: np.random.Generator) -> Image.Image:
    """One photo of `design`: random viewpoint, colours, scene and sensor noise."""
    canvas = 2 * size  # drawn at twice the size; the resampling below smooths the edges
    layer = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    design.draw(Pen(ImageDraw.Draw(layer), canvas), _jitter_palette(design.palette, rng))

    # Viewpoint: the design's unit square becomes a jittered quadrilateral in the photo whose
    # ground line sits near the horizon, as a photo taken from street level would have it.
    horizon = rng.uniform(0.78, 0.97) * size
    side = rng.uniform(0.55, 0.9) * size
    cx = size / 2 + rng.uniform(-0.12, 0.12) * size
    cy = horizon - (GROUND - 0.5) * side + rng.uniform(-0.03, 0.03) * size
    angle = np.radians(rng.uniform(-6, 6))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    unit = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    corners = unit * side @ rot.T + rng.uniform(-0.08, 0.08, size=(4, 2)) * side + (cx, cy)
    source = (unit + 0.5) * canvas
    placed = layer.transform(
        (size, size),
        Image.Transform.PERSPECTIVE,
        _perspective_coeffs(corners, source),
        resample=Image.Resampling.BILINEAR,
    )

    scene = Image.alpha_composite(_background(size, horizon, rng), placed)
    _trees(scene, horizon, rng)
    image = scene.convert("RGB")
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    pixels = np.asarray(image, dtype=np.float32)
    contrast = rng.uniform(0.8, 1.2)
    pixels = (pixels - pixels.mean()) * contrast + pixels.mean() + rng.uniform(-20, 20)
    pixels += rng.normal(0.0, rng.uniform(2.0, 9.0), size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _jpeg(image: Image.Image, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(70, 96)))
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _prepare(out: Path) -> None:
    """Make `out` ready to (re)write; refuse a non-empty directory that is not a dataset."""
    if out.exists() and not out.is_dir():
        raise LandmarksError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / TRAIN_CSV).exists():
        raise LandmarksError(
            f"{out} is not empty and holds no {TRAIN_CSV}: refusing to write a dataset into it; "
            "choose a new or empty directory"
        )
    # Images of an earlier generation (another seed or size) would linger unreferenced.
    shutil.rmtree(out / IMAGES_DIR, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def generate(
    out_dir: str | Path,
    *,
    classes: int = 6,
    images_per_class: int = 40,
    size: int = 128,
    seed: int = 0,
    base_url: str = DEFAULT_BASE_URL,
    defects: bool = True,
    progress: bool = False,
) -> Path:
    """Write a synthetic GLDv2-format dataset into `out_dir` and return `out_dir`.

    The output is byte-identical for the same arguments (and Pillow/libjpeg build).

    Args:
        out_dir: Local directory; created, or rewritten if it already holds a dataset.
        classes: Number of landmarks, at most `MAX_CLASSES`.
        images_per_class: Valid images per landmark (defect rows come on top).
        size: Width and height of the images in pixels.
        seed: Seeds viewpoints, colours, scenes, ids and landmark ids.
        base_url: Prefix of the image URLs in train.csv (where `serve` will listen).
        defects: Add two 404 rows, one truncated JPEG and one duplicate image.
        progress: Show a progress bar.

    Raises:
        LandmarksError: On arguments out of range or an output directory that is not ours.
    """
    if not 2 <= classes <= MAX_CLASSES:
        raise LandmarksError(f"classes must be between 2 and {MAX_CLASSES}, got {classes}")
    if images_per_class < 1:
        raise LandmarksError(f"images_per_class must be at least 1, got {images_per_class}")
    if size < 16:
        raise LandmarksError(f"size must be at least 16 pixels, got {size}")
    out = Path(out_dir)
    _prepare(out)
    images = out / IMAGES_DIR
    landmark_ids = _landmark_ids(classes, seed)
    rows: list[Row] = []

    bar = tqdm(
        total=classes * images_per_class,
        desc="synthetic images",
        unit="img",
        disable=not progress,
    )
    with bar:
        for c in range(classes):
            for i in range(images_per_class):
                rng = np.random.default_rng([seed, c, i])
                row = Row(_image_id(seed, c, i), landmark_ids[c])
                _write(images / row.rel_path, _jpeg(render(DESIGNS[c], size, rng), rng))
                rows.append(row)
                bar.update()

    if defects:
        rows.extend(_write_defects(images, rows, landmark_ids, size, seed))

    ids = [row.id for row in rows]
    if len(set(ids)) != len(ids):  # 64-bit ids: a clash would mean a bug, not bad luck
        raise LandmarksError("generated image ids are not unique")

    # GLDv2's train.csv is not grouped by landmark; sorting by the random ids mixes classes.
    rows.sort(key=lambda r: r.id)
    with (out / TRAIN_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "url", "landmark_id"])
        for row in rows:
            writer.writerow([row.id, image_url(base_url, row.id), row.landmark_id])
    with (out / CATEGORY_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["landmark_id", "category"])
        for c, landmark_id in enumerate(landmark_ids):
            writer.writerow([landmark_id, CATEGORY_URL.format(name=DESIGNS[c].name)])
    log.info(
        "wrote %d rows (%d classes x %d images%s) to %s",
        len(rows),
        classes,
        images_per_class,
        ", plus 4 defect rows" if defects else "",
        out,
    )
    return out


def _write_defects(
    images: Path, rows: list[Row], landmark_ids: list[int], size: int, seed: int
) -> list[Row]:
    """Rows whose image is missing (HTTP 404), truncated, or a byte copy of another image."""
    classes = len(landmark_ids)
    extra = len(rows) // classes  # first index past the valid images of each class
    defects = [
        Row(_image_id(seed, 0, f"missing-{extra}"), landmark_ids[0]),
        Row(_image_id(seed, 1, f"missing-{extra}"), landmark_ids[1]),
    ]

    c = 2 % classes
    rng = np.random.default_rng([seed, c, extra, 0xBAD])
    data = _jpeg(render(DESIGNS[c], size, rng), rng)
    truncated = Row(_image_id(seed, c, f"truncated-{extra}"), landmark_ids[c])
    _write(images / truncated.rel_path, data[: len(data) * 2 // 5])
    defects.append(truncated)

    original = rows[(3 % classes) * extra]
    duplicate = Row(_image_id(seed, 3 % classes, f"duplicate-{extra}"), original.landmark_id)
    _write(images / duplicate.rel_path, (images / original.rel_path).read_bytes())
    defects.append(duplicate)
    return defects
