"""The tf.data input pipeline: stream JPEGs from a file list, never load a split whole.

Per worker: its shard of the file list (sharded before decoding, so no worker decodes
an image it then drops) -> shuffle file names -> parallel read + decode + resize ->
batch (the per-replica share of the global batch) -> augmentation on whole batches ->
prefetch. Images stay uint8 until batched (4x less memory in the optional cache).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tf_keras as keras

from landmarks.errors import InputError
from landmarks.train.config import TrainConfig

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
# Shuffling decoded images (only when cached) needs a bounded buffer; file names are
# cheap, so the uncached path shuffles a worker's whole shard.
DECODED_SHUFFLE_BUFFER = 4096


def decode_image(raw: tf.Tensor, size: int) -> tf.Tensor:
    """JPEG bytes -> uint8 [size, size, 3] (grayscale and CMYK become RGB).

    Large images are shrunk while decoding (libjpeg's DCT scaling by 2, 4 or 8), which
    is several times faster than decoding at full size and resizing afterwards; the rest
    of the way is a bilinear resize.
    """
    shape = tf.io.extract_jpeg_shape(raw)
    shortest = tf.minimum(shape[0], shape[1])
    # The largest power-of-two scale that still leaves at least `size` pixels.
    scale_index = (
        tf.cast(shortest >= 2 * size, tf.int32)
        + tf.cast(shortest >= 4 * size, tf.int32)
        + tf.cast(shortest >= 8 * size, tf.int32)
    )
    branches = [
        (lambda r=ratio: tf.io.decode_jpeg(raw, channels=3, ratio=r, dct_method="INTEGER_FAST"))
        for ratio in (1, 2, 4, 8)
    ]
    image = tf.switch_case(scale_index, branches)
    image.set_shape([None, None, 3])
    same = tf.logical_and(tf.shape(image)[0] == size, tf.shape(image)[1] == size)
    image = tf.cond(
        same,
        lambda: image,
        lambda: tf.saturate_cast(tf.round(tf.image.resize(image, [size, size])), tf.uint8),
    )
    return tf.ensure_shape(image, [size, size, 3])


def load_image(path: str | tf.Tensor, size: int) -> tf.Tensor:
    """float32 [size, size, 3] pixels 0..255, exactly as the trainer feeds its models."""
    return tf.cast(decode_image(tf.io.read_file(path), size), tf.float32)


def augmentation(cfg: TrainConfig) -> keras.Sequential | None:
    """Rotation, shift and zoom as preprocessing layers (ImageDataGenerator's ranges).

    `rotation_range` is in degrees (a fraction of a full turn for the layer); shifts are
    fractions of height and width; `zoom_range=z` zooms each axis by a factor in
    [1 - z, 1 + z], as ImageDataGenerator did.
    """
    if not cfg.augment:
        return None
    layers: list[Any] = []
    if cfg.rotation_range:
        layers.append(
            keras.layers.RandomRotation(cfg.rotation_range / 360, fill_mode=cfg.fill_mode)
        )
    if cfg.width_shift_range or cfg.height_shift_range:
        layers.append(
            keras.layers.RandomTranslation(
                cfg.height_shift_range, cfg.width_shift_range, fill_mode=cfg.fill_mode
            )
        )
    if cfg.zoom_range:
        z = cfg.zoom_range
        layers.append(keras.layers.RandomZoom((-z, z), (-z, z), fill_mode=cfg.fill_mode))
    return keras.Sequential(layers, name="augmentation") if layers else None


def _shard(
    paths: Sequence[str], labels: Sequence[int], ctx: tf.distribute.InputContext | None
) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(paths), tf.string), tf.constant(list(labels), tf.int32))
    )
    if ctx is not None and ctx.num_input_pipelines > 1:
        ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
    options = tf.data.Options()
    # Sharded by hand above; AUTO would fall back to DATA and decode every image everywhere.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def _per_replica_batch(cfg: TrainConfig, ctx: tf.distribute.InputContext | None) -> int:
    return ctx.get_per_replica_batch_size(cfg.batch_size) if ctx is not None else cfg.batch_size


def _decode_fn(size: int) -> Any:
    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return decode_image(tf.io.read_file(path), size), label

    return decode


def _to_float(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32), labels


def train_dataset(
    paths: Sequence[str],
    labels: Sequence[int],
    cfg: TrainConfig,
    ctx: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """An endless, shuffled, augmented stream of this worker's training batches."""
    ds = _shard(paths, labels, ctx)
    seed = cfg.seed + (ctx.input_pipeline_id if ctx is not None else 0)
    shard_size = math.ceil(len(paths) / (ctx.num_input_pipelines if ctx is not None else 1))
    decode = _decode_fn(cfg.image_size)
    if cfg.cache:
        ds = ds.map(decode, num_parallel_calls=AUTOTUNE).cache()
        ds = ds.shuffle(min(shard_size, DECODED_SHUFFLE_BUFFER), seed=seed)
    else:
        ds = ds.shuffle(max(shard_size, 1), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=False)
    ds = ds.repeat().batch(_per_replica_batch(cfg, ctx)).map(_to_float)
    augment = augmentation(cfg)
    if augment is not None:
        ds = ds.map(
            lambda x, y: (augment(x, training=True), y),
            num_parallel_calls=AUTOTUNE,
            deterministic=False,
        )
    return ds.prefetch(AUTOTUNE)


def eval_dataset(
    paths: Sequence[str],
    labels: Sequence[int],
    cfg: TrainConfig,
    ctx: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """This worker's shard of a validation set, once, in order, unaugmented."""
    ds = _shard(paths, labels, ctx).map(_decode_fn(cfg.image_size), num_parallel_calls=AUTOTUNE)
    if cfg.cache:
        ds = ds.cache()
    return ds.batch(_per_replica_batch(cfg, ctx)).map(_to_float).prefetch(AUTOTUNE)


def eval_steps(num_images: int, cfg: TrainConfig, num_workers: int) -> int:
    """Steps that cover every worker's validation shard (shards differ by one image)."""
    per_replica = cfg.batch_size // num_workers
    largest_shard = math.ceil(num_images / num_workers)
    return max(1, math.ceil(largest_shard / per_replica))


def find_unreadable(paths: Sequence[str], size: int) -> tuple[str, str] | None:
    """The first file that does not decode as a JPEG, with TensorFlow's reason.

    Used after a decode error stopped training: tf.data's error does not say which
    file it was, and checking a whole split up front would cost a full extra read.
    """
    from tqdm import tqdm

    for path in tqdm(paths, desc="looking for the unreadable image", unit="img", mininterval=5):
        try:
            decode_image(tf.io.read_file(path), size)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
            return path, _op_reason(err.message)
    return None


def _op_reason(message: str) -> str:
    """TensorFlow's op error without the graph-function and op-name decorations."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message.strip().splitlines()[0])
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)


def shard_paths(paths: Sequence[str], num_workers: int, index: int) -> list[str]:
    """The files `Dataset.shard(num_workers, index)` gives a worker."""
    return list(paths[index::num_workers])


def unreadable_image_error(paths: Sequence[str], size: int) -> InputError | None:
    found = find_unreadable(paths, size)
    if found is None:
        return None
    path, reason = found
    return InputError(f"not a readable JPEG image ({reason}); remove or replace it", file=path)
