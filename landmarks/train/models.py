"""The three model families of the seed recipe, their weights and their freezing.

Every model takes float32 RGB images with pixel values 0..255 and carries its own
preprocessing, so evaluation and serving feed raw pixels and cannot get it wrong.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from landmarks import storage
from landmarks.artifacts import MODEL_FILE
from landmarks.errors import InputError, LandmarksError
from landmarks.train.recipe import TrainConfig

log = logging.getLogger(__name__)

# The official no-top files; named in the error that tells an air-gapped user what to pass.
IMAGENET_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
_APPLICATIONS = {
    "vgg16": keras.applications.VGG16,
    "resnet50": keras.applications.ResNet50,
}


# ImageNet "caffe" preprocessing of VGG16 and ResNet50: RGB -> BGR, minus the channel means.
_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def _caffe_preprocess(inputs: Any) -> Any:
    """VGG16 / ResNet50 input preprocessing as a frozen 1x1 convolution.

    A built-in layer rather than a Lambda or a custom class: a saved model then reloads
    with plain `tf_keras.models.load_model`, with no pickled code and no custom objects.
    The kernel permutes RGB into BGR, the bias subtracts the ImageNet means.
    """
    layer = keras.layers.Conv2D(3, 1, name="imagenet_preprocess", dtype="float32", trainable=False)
    outputs = layer(inputs)
    kernel = np.zeros((1, 1, 3, 3), dtype=np.float32)
    for rgb in range(3):
        kernel[0, 0, rgb, 2 - rgb] = 1.0
    layer.set_weights([kernel, -_MEAN_BGR])
    return outputs


def _lenet5(cfg: TrainConfig, num_classes: int) -> keras.Model:
    size = cfg.image_size
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(6, 5, activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 5, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(120, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(84, activation="relu", name="fc2")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name="lenet5")


@contextlib.contextmanager
def _local_copy(uri: str, missing: str, field: str | None = None) -> Iterator[str]:
    """A local path for a local or object-store file; a downloaded copy is removed afterwards.

    `missing` is the error's reason when there is no such file.
    """
    if not storage.is_remote(uri):
        if not Path(uri).is_file():
            raise InputError(missing, file=uri, field=field)
        yield uri
        return
    if not storage.exists(uri):
        raise InputError(missing, file=uri, field=field)
    suffix = "".join(Path(storage.split_uri(uri)[2]).suffixes) or ".h5"
    fd, local = tempfile.mkstemp(prefix="landmarks-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(storage.read_bytes(uri))
        yield local
    finally:
        Path(local).unlink(missing_ok=True)


def _weights_file(uri: str) -> contextlib.AbstractContextManager[str]:
    """A local path for a weights file given as a local path or a gs://, s3://, minio:// URI."""
    return _local_copy(uri, "no such weights file", field="weights")


def _base(cfg: TrainConfig) -> keras.Model:
    build = _APPLICATIONS[cfg.model]
    shape = (cfg.image_size, cfg.image_size, 3)
    if cfg.weights == "none":
        return build(include_top=False, weights=None, input_shape=shape)
    if cfg.weights == "imagenet":
        try:
            return build(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as err:  # Keras raises a bare Exception for a failed download
            if "URL fetch failure" not in str(err) and "fetch" not in str(err).lower():
                raise
            raise LandmarksError(
                f"could not download the ImageNet weights of {cfg.model} ({err}). On a "
                f"cluster without internet access, copy {IMAGENET_FILES[cfg.model]} to a "
                "volume or bucket and pass its path: --weights /models/"
                f"{IMAGENET_FILES[cfg.model]} (or gs://...); --weights none trains from "
                "scratch"
            ) from None
    try:
        with _weights_file(cfg.weights) as local:
            return build(include_top=False, weights=local, input_shape=shape)
    except (ValueError, OSError, KeyError, tf.errors.OpError) as err:
        raise InputError(
            f"not a weights file for {cfg.model} without its top (include_top=False): {err}",
            file=cfg.weights,
            field="weights",
        ) from None


def block_names(layers: list[Any]) -> list[str]:
    """The named blocks of a base model: `conv4_block2`, `block3`, ... in order."""
    out: list[str] = []
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        parts = layer.name.split("_")
        name = "_".join(parts[:2]) if len(parts) > 1 and parts[1].startswith("block") else parts[0]
        if name not in out:
            out.append(name)
    return out


def freeze(layers: list[Any], cfg: TrainConfig) -> None:
    """Freeze the configured blocks and, unless asked otherwise, every BatchNorm layer.

    A BatchNormalization layer with `trainable=False` also runs in inference mode in
    tf-keras, which keeps the pretrained statistics; the model must be compiled after
    this, since trainability is read at compile time.
    """
    for prefix in cfg.frozen_blocks:
        if prefix == "all":
            matched = list(layers)
        else:
            matched = [x for x in layers if x.name == prefix or x.name.startswith(prefix + "_")]
        if not matched:
            raise InputError(
                f"no layer of {cfg.model} belongs to block {prefix!r}; its blocks are "
                f"{', '.join(block_names(layers))} (or 'all')",
                field="frozen_blocks",
            )
        for layer in matched:
            layer.trainable = False
    if not cfg.train_batchnorm:
        for layer in layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def build_model(cfg: TrainConfig, num_classes: int) -> keras.Model:
    """The stage's model, weights loaded, frozen and compiled. Call under the strategy scope."""
    keras.mixed_precision.set_global_policy(cfg.precision)
    if cfg.model == "lenet5":
        model = _lenet5(cfg, num_classes)
        if cfg.weights != "none":
            try:
                with _weights_file(cfg.weights) as local:
                    model.load_weights(local)
            except (ValueError, OSError, KeyError, tf.errors.OpError) as err:
                raise InputError(
                    f"not a weights file for lenet5 with {num_classes} classes: {err}",
                    file=cfg.weights,
                    field="weights",
                ) from None
        freeze([x for x in model.layers if x.name != "predictions"], cfg)
    else:
        base = _base(cfg)
        freeze(base.layers, cfg)
        inputs = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
        x = base(_caffe_preprocess(inputs))
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        outputs = keras.layers.Dense(
            num_classes, activation="softmax", dtype="float32", name="predictions"
        )(x)
        model = keras.Model(inputs, outputs, name=f"{cfg.model}_landmarks")
    metrics: list[Any] = ["accuracy"]
    if num_classes > 5:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5_accuracy"))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=metrics,
    )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    log.info("%s: %d parameters, %d trainable", model.name, model.count_params(), trainable)
    return model


def load_saved_model(model_dir: str, compile: bool = False) -> keras.Model:
    with _local_copy(storage.join(model_dir, MODEL_FILE), "no trained model here") as local:
        return keras.models.load_model(local, compile=compile)
