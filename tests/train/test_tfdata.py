"""The input pipeline's pieces, in process: decoding, augmentation, sharding."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import landmarks.train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from landmarks.train.recipe import resolve_config


def _jpeg(width: int, height: int, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(0)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("width", "height", "mode"),
    [(32, 32, "RGB"), (300, 200, "RGB"), (1100, 900, "RGB"), (40, 90, "L")],
)
def test_any_jpeg_decodes_to_the_square_rgb_size(width: int, height: int, mode: str) -> None:
    import tensorflow as tf

    from landmarks.train.tfdata import decode_image

    image = decode_image(tf.constant(_jpeg(width, height, mode)), 32)
    assert image.shape == (32, 32, 3) and image.dtype == tf.uint8


def test_an_image_at_the_target_size_is_only_decoded() -> None:
    import tensorflow as tf

    from landmarks.train.tfdata import decode_image

    raw = tf.constant(_jpeg(32, 32))
    plain = tf.io.decode_jpeg(raw, channels=3, dct_method="INTEGER_FAST")
    assert np.array_equal(decode_image(raw, 32).numpy(), plain.numpy())


def test_downscaled_decode_stays_close_to_a_full_decode_and_resize() -> None:
    import tensorflow as tf

    from landmarks.train.tfdata import decode_image

    # A smooth image: DCT scaling and a full-size resize must agree closely on it.
    yy, xx = np.mgrid[0:512, 0:512]
    smooth = np.stack([xx / 2, yy / 2, (xx + yy) / 4], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(smooth).save(out, "JPEG", quality=95)
    raw = tf.constant(out.getvalue())
    reference = tf.image.resize(tf.io.decode_jpeg(raw), [64, 64], antialias=True)
    error = np.abs(decode_image(raw, 64).numpy().astype(float) - reference.numpy())
    assert error.mean() < 2.0


def test_augmentation_is_identity_outside_training_and_varies_inside() -> None:
    import tensorflow as tf

    from landmarks.train.tfdata import augmentation

    layer = augmentation(resolve_config("stage3"))
    assert layer is not None
    batch = tf.constant(np.random.default_rng(1).integers(0, 255, (4, 32, 32, 3)), tf.uint8)
    assert np.array_equal(layer(batch, training=False).numpy(), batch.numpy())
    out = layer(batch, training=True).numpy()
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert not np.array_equal(out, batch.numpy())
    assert augmentation(resolve_config("stage2-resnet50")) is None


def test_zero_ranges_leave_images_unchanged() -> None:
    import tensorflow as tf

    from landmarks.train.augment import RandomAffine

    batch = tf.constant(np.random.default_rng(2).uniform(0, 255, (2, 16, 16, 3)), tf.float32)
    out = RandomAffine()(batch, training=True)
    np.testing.assert_allclose(out.numpy(), batch.numpy(), atol=1e-3)


def test_width_shift_moves_content_along_rows_only() -> None:
    import tensorflow as tf

    from landmarks.train.augment import RandomAffine

    image = np.zeros((1, 32, 32, 1), np.float32)
    image[0, :, 16, 0] = 255.0  # one bright column
    out = RandomAffine(width_shift_range=0.25, fill_mode="constant")(
        tf.constant(image), training=True
    ).numpy()[0, :, :, 0]
    columns = np.flatnonzero(out.sum(axis=0) > 100)
    assert len(columns) >= 1 and all(np.allclose(out[:, c], out[0, c]) for c in columns)
    assert abs(int(columns.mean()) - 16) <= 8


def test_each_worker_reads_a_disjoint_shard_of_the_files(tmp_path: Path) -> None:
    import tensorflow as tf

    from landmarks.train.tfdata import eval_dataset

    paths = []
    for i in range(11):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(_jpeg(32, 32))
        paths.append(str(path))
    cfg = resolve_config("stage1", "tiny")
    seen = []
    for worker in range(2):
        ctx = tf.distribute.InputContext(2, worker, 2)
        labels = list(range(11))
        seen.append([int(y) for _, ys in eval_dataset(paths, labels, cfg, 4, ctx) for y in ys])
    assert sorted(seen[0] + seen[1]) == list(range(11))
    assert not set(seen[0]) & set(seen[1])


@pytest.mark.parametrize(
    ("images", "batch", "workers"),
    [(9, 4, 2), (11, 4, 2), (100, 8, 3), (48, 4, 4), (49, 4, 4), (13, 1, 2), (3, 64, 2), (7, 7, 1)],
)
def test_validation_plan_gives_every_worker_equal_non_empty_batches(
    images: int, batch: int, workers: int
) -> None:
    from landmarks.train.tfdata import eval_plan

    plan = eval_plan(images, batch, workers)
    assert plan is not None
    shards = [len(range(w, images, workers)) for w in range(workers)]
    batches = [-(-shard // plan.batch) for shard in shards]
    assert batches == [plan.steps] * workers
    assert plan.batch <= max(batch, max(shards) + 1)


def test_validation_is_skipped_when_a_worker_would_get_no_image() -> None:
    from landmarks.train.tfdata import eval_plan

    assert eval_plan(1, 4, 2) is None
    assert eval_plan(0, 4, 1) is None
