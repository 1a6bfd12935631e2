"""The tf.data input pipeline: stream JPEGs from a file list, never load a split whole.

Per worker: its shard of the file list (sharded before decoding, so no worker decodes
an image it then drops) -> shuffle file names -> parallel read + decode + resize ->
batch (the per-replica share of the global batch) -> augmentation on whole batches ->
prefetch. Batches stay uint8 pixels 0..255: the model's input is float32 and Keras casts
on the way in, inside the training step; a float32 cast in the pipeline moved four times
the bytes and cost about a third of its throughput.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from landmarks.errors import InputError
from landmarks.train.augment import RandomAffine
from landmarks.train.recipe import TrainConfig

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
# Shuffling decoded images (only when cached) needs a bounded buffer; file names are
# cheap, so the uncached path shuffles a worker's whole shard.
DECODED_SHUFFLE_BUFFER = 4096


def decode_image(raw: tf.Tensor, size: int) -> tf.Tensor:
    """Image bytes -> uint8 [size, size, 3] (grayscale and CMYK become RGB).

    Ingest stores JPEGs only; other formats (a PNG distractor handed to the evaluation)
    are decoded whole and resized the same way.
    """
    return tf.cond(
        tf.io.is_jpeg(raw), lambda: _decode_jpeg(raw, size), lambda: _decode_other(raw, size)
    )


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
    return tf.saturate_cast(tf.round(tf.image.resize(image, [size, size])), tf.uint8)


def _decode_other(raw: tf.Tensor, size: int) -> tf.Tensor:
    image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return tf.ensure_shape(_resize(image, size), [size, size, 3])


def _decode_jpeg(raw: tf.Tensor, size: int) -> tf.Tensor:
    """JPEG bytes -> uint8 [size, size, 3].

    Large images are shrunk while decoding (libjpeg's DCT scaling by 2, 4 or 8), several
    times faster than decoding at full size and resizing afterwards; a bilinear resize
    does the rest. The JPEG header says which case applies, so one branch is taken per
    image, and an image already at `size` is only decoded.
    """
    shape = tf.io.extract_jpeg_shape(raw)
    shortest = tf.minimum(shape[0], shape[1])
    exact = tf.logical_and(shape[0] == size, shape[1] == size)
    # Branch 0: decode only. Branches 1..4: decode at 1/1, 1/2, 1/4, 1/8 (the largest
    # scale that keeps at least `size` pixels), then resize.
    branch = tf.where(
        exact,
        0,
        1
        + tf.cast(shortest >= 2 * size, tf.int32)
        + tf.cast(shortest >= 4 * size, tf.int32)
        + tf.cast(shortest >= 8 * size, tf.int32),
    )

    def decode(ratio: int) -> tf.Tensor:
        return tf.io.decode_jpeg(raw, channels=3, ratio=ratio, dct_method="INTEGER_FAST")

    def shrink(ratio: int) -> Any:
        return lambda: _resize(decode(ratio), size)

    image = tf.switch_case(branch, [lambda: decode(1), shrink(1), shrink(2), shrink(4), shrink(8)])
    return tf.ensure_shape(image, [size, size, 3])


def load_image(path: str | tf.Tensor, size: int) -> tf.Tensor:
    """float32 [size, size, 3] pixels 0..255, exactly as the trainer feeds its models."""
    return tf.cast(decode_image(tf.io.read_file(path), size), tf.float32)


def augmentation(cfg: TrainConfig) -> RandomAffine | None:
    """Stage 3's random rotation, shift and zoom (None when augmentation is off)."""
    ranges = (cfg.rotation_range, cfg.width_shift_range, cfg.height_shift_range, cfg.zoom_range)
    if not cfg.augment or not any(ranges):
        return None
    return RandomAffine(*ranges, fill_mode=cfg.fill_mode, name="augmentation")


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
    ds = ds.repeat().batch(_per_replica_batch(cfg, ctx))
    augment = augmentation(cfg)
    if augment is not None:
        ds = ds.map(
            lambda x, y: (augment(x, training=True), y),
            num_parallel_calls=AUTOTUNE,
            deterministic=False,
        )
    return ds.prefetch(AUTOTUNE)


@dataclass(frozen=True)
class EvalPlan:
    """How every worker walks its validation shard: same step count, no empty batch."""

    batch: int  # per worker
    steps: int


def eval_plan(num_images: int, per_replica_batch: int, num_workers: int) -> EvalPlan | None:
    """A validation batch size that gives every worker the same number of non-empty batches.

    Shards differ by at most one image. When the smaller shard is a multiple of the batch
    size, the larger one needs one more step, and the other worker would have to run it
    on an empty batch, which TensorFlow's oneDNN convolutions reject ("input depth must be
    evenly divisible by filter depth"). So the batch size is the largest one up to the
    training batch (or the next one above it) that does not divide the smaller shard.
    None when some worker would get no validation image at all.
    """
    smaller, larger = num_images // num_workers, -(-num_images // num_workers)
    if smaller == 0:
        return None
    batch = per_replica_batch
    if smaller != larger:
        candidates = [*range(per_replica_batch, 1, -1), *range(per_replica_batch + 1, larger + 2)]
        batch = next(b for b in candidates if smaller % b)
    return EvalPlan(batch, math.ceil(larger / batch))


def eval_dataset(
    paths: Sequence[str],
    labels: Sequence[int],
    cfg: TrainConfig,
    batch: int,
    ctx: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """This worker's shard of a validation set, once, in order, unaugmented."""
    ds = _shard(paths, labels, ctx).map(_decode_fn(cfg.image_size), num_parallel_calls=AUTOTUNE)
    if cfg.cache:
        ds = ds.cache()
    return ds.batch(batch).prefetch(AUTOTUNE)


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
            return path, op_reason(err.message)
    return None


def op_reason(message: str) -> str:
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
