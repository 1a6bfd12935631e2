"""Stage 3's augmentation: ImageDataGenerator's rotation, shift and zoom as one layer.

Keras' RandomRotation, RandomTranslation and RandomZoom each resample the whole batch;
chained, an image is interpolated three times. The three are affine maps about the image
centre, so this layer composes them into one matrix per image and resamples once with
TensorFlow's ImageProjectiveTransformV3 (the op those layers use): about three times
less work, and one interpolation blur instead of three.

Works on uint8 batches as well as float ones (the input pipeline keeps uint8: a quarter
of the memory traffic). Ranges mean what they meant to ImageDataGenerator:
`rotation_range` in degrees, shifts as fractions of width and height, `zoom_range=z`
scales each axis independently by a factor in [1 - z, 1 + z]; each image of a batch
gets its own draw.
"""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="landmarks")
class RandomAffine(keras.layers.Layer):
    """Random rotation, shift and zoom in one resampling; identity outside training."""

    def __init__(
        self,
        rotation_range: float = 0.0,
        width_shift_range: float = 0.0,
        height_shift_range: float = 0.0,
        zoom_range: float = 0.0,
        fill_mode: str = "nearest",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.zoom_range = zoom_range
        self.fill_mode = fill_mode

    def _uniform(self, n: tf.Tensor, low: float, high: float) -> tf.Tensor:
        return tf.random.uniform([n], low, high, dtype=tf.float32)

    def transforms(self, batch: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
        """[batch, 8] projective transforms mapping output pixels to input pixels."""
        h = tf.cast(height, tf.float32)
        w = tf.cast(width, tf.float32)
        angle = self._uniform(batch, -self.rotation_range, self.rotation_range) * (math.pi / 180)
        zoom_x = self._uniform(batch, 1 - self.zoom_range, 1 + self.zoom_range)
        zoom_y = self._uniform(batch, 1 - self.zoom_range, 1 + self.zoom_range)
        shift_x = self._uniform(batch, -self.width_shift_range, self.width_shift_range) * w
        shift_y = self._uniform(batch, -self.height_shift_range, self.height_shift_range) * h
        cos, sin = tf.cos(angle), tf.sin(angle)
        # input = centre + R(angle) @ diag(zoom) @ (output - centre) + shift
        a0, a1 = zoom_x * cos, -zoom_y * sin
        b0, b1 = zoom_x * sin, zoom_y * cos
        cx, cy = (w - 1) / 2, (h - 1) / 2
        a2 = cx - a0 * cx - a1 * cy + shift_x
        b2 = cy - b0 * cx - b1 * cy + shift_y
        zeros = tf.zeros_like(a0)
        return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training:
            return inputs
        images = tf.convert_to_tensor(inputs)
        shape = tf.shape(images)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=self.transforms(shape[0], shape[1], shape[2]),
            output_shape=shape[1:3],
            fill_value=tf.constant(0.0, tf.float32),
            interpolation="BILINEAR",
            fill_mode=self.fill_mode.upper(),
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rotation_range": self.rotation_range,
            "width_shift_range": self.width_shift_range,
            "height_shift_range": self.height_shift_range,
            "zoom_range": self.zoom_range,
            "fill_mode": self.fill_mode,
        }
