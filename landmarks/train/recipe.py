"""Stage presets and the one resolved configuration a training run uses.

A run's configuration is built in layers, each overriding the one before:

1. `TrainConfig`'s defaults;
2. the stage preset (`STAGES`), the seed's recipe for that stage;
3. a profile chosen by name (`PROFILES`): `demo` and `tiny` shrink epochs, image counts
   and image size so a laptop or CI run finishes in minutes without code changes (a
   profile may set single stages apart under `stages`);
4. `key=value` overrides from the command line (`--set epochs=5`), any field.

The seed recipe (modeling summary) gives: LeNet-5 at 128x128x3 as the smoke stage;
VGG16 and ResNet50 without top, global average pooling and a softmax head, Adam 1e-4,
batch 128, 160 and 80 epochs, ResNet50 with only its last layers trainable; then ResNet50
with rotation, shift and zoom augmentation for 22 epochs at a learning rate of 0.000157.
Where the seed gives no number (stage 1's epochs, the augmentation ranges) the default is
stated beside the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from landmarks.errors import InputError

MODELS = ("lenet5", "vgg16", "resnet50")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
FILL_MODES = ("nearest", "reflect", "constant", "wrap")
# Keras' applications refuse smaller inputs; LeNet-5's two 5x5 convolutions and two
# poolings need at least 16 pixels.
MIN_IMAGE_SIZE = {"lenet5": 16, "vgg16": 32, "resnet50": 32}


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of a training run. `batch_size` is global (all workers)."""

    model: str = "lenet5"
    image_size: int = 128
    batch_size: int = 128
    epochs: int = 10
    learning_rate: float = 1e-3
    # `imagenet`, `none`, or a local path or gs://, s3://, minio:// URI to a Keras weights file of
    # the base model without its top (e.g. resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5).
    weights: str = "none"
    # Layer-name prefixes of the base model's blocks to freeze: `conv4` freezes every
    # `conv4_*` layer of ResNet50, `block1` every `block1_*` layer of VGG16. `all`
    # freezes the whole base.
    frozen_blocks: tuple[str, ...] = ()
    # BatchNorm layers stay frozen (inference mode, ImageNet statistics) unless this is
    # set: fine-tuning them with small batches destroys the pretrained statistics.
    train_batchnorm: bool = False
    augment: bool = False
    # The seed names the augmentations but not their ranges; these are the usual
    # ImageDataGenerator values (degrees, fractions of width / height, zoom +-20%).
    rotation_range: float = 20.0
    width_shift_range: float = 0.2
    height_shift_range: float = 0.2
    zoom_range: float = 0.2
    # ImageDataGenerator's default, so stage 3 sees what the seed's generator produced.
    fill_mode: str = "nearest"
    # Use at most this many training images per class (0: all); for demo runs.
    max_images_per_class: int = 0
    # Keep decoded images in memory after the first epoch; only for small splits.
    cache: bool = False
    # Shuffles the training files; the same seed on every worker keeps shards disjoint.
    seed: int = 42
    precision: str = "float32"

    def validate(self) -> TrainConfig:
        """Return self, or raise InputError naming the first field with a bad value."""

        def bad(name: str, why: str) -> InputError:
            return InputError(f"{why} (got {getattr(self, name)!r})", field=name)

        if self.model not in MODELS:
            raise bad("model", f"must be one of {', '.join(MODELS)}")
        if self.image_size < MIN_IMAGE_SIZE[self.model]:
            raise bad("image_size", f"{self.model} needs at least {MIN_IMAGE_SIZE[self.model]}")
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        if not self.learning_rate > 0:
            raise bad("learning_rate", "must be positive")
        for name in ("rotation_range", "width_shift_range", "height_shift_range", "zoom_range"):
            if getattr(self, name) < 0:
                raise bad(name, "must not be negative")
        for name in ("width_shift_range", "height_shift_range", "zoom_range"):
            if getattr(self, name) >= 1:
                raise bad(name, "is a fraction of the image and must be below 1")
        if self.max_images_per_class < 0:
            raise bad("max_images_per_class", "must be 0 (all) or positive")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"must be one of {', '.join(PRECISIONS)}")
        if self.fill_mode not in FILL_MODES:
            raise bad("fill_mode", f"must be one of {', '.join(FILL_MODES)}")
        if not self.weights:
            raise bad("weights", "must be imagenet, none or a path")
        if self.model == "lenet5" and self.weights == "imagenet":
            raise bad("weights", "there are no ImageNet weights for lenet5; use none or a path")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SEED_TRANSFER = {"image_size": 128, "batch_size": 128, "weights": "imagenet"}

STAGES: dict[str, dict[str, Any]] = {
    # The pipeline smoke run: LeNet-5 from scratch at 128x128x3, Adam's default rate.
    # The seed gives no epoch count for it; 10 shows learning without costing much.
    "stage1": {
        "model": "lenet5",
        "image_size": 128,
        "batch_size": 128,
        "epochs": 10,
        "learning_rate": 1e-3,
        "weights": "none",
    },
    # The seed froze "two layers" of VGG16 after freezing five did worse; frozen here as
    # its first two named blocks (block1, block2: four conv layers).
    "stage2-vgg16": {
        **_SEED_TRANSFER,
        "model": "vgg16",
        "epochs": 160,
        "learning_rate": 1e-4,
        "frozen_blocks": ("block1", "block2"),
    },
    # The seed trained "only the last five layers" of ResNet50; Keras counts layers, not
    # blocks, and those five are the last bottleneck block's tail: the cut is made at the
    # named block instead, so conv5_block3 (and the head) train.
    "stage2-resnet50": {
        **_SEED_TRANSFER,
        "model": "resnet50",
        "epochs": 80,
        "learning_rate": 1e-4,
        "frozen_blocks": ("conv1", "conv2", "conv3", "conv4", "conv5_block1", "conv5_block2"),
    },
    "stage3": {
        **_SEED_TRANSFER,
        "model": "resnet50",
        "epochs": 22,
        "learning_rate": 0.000157,
        "frozen_blocks": ("conv1", "conv2", "conv3", "conv4", "conv5_block1", "conv5_block2"),
        "augment": True,
    },
}

PROFILES: dict[str, dict[str, Any]] = {
    # The seed's recipe as is.
    "full": {},
    # A laptop or embedded-cluster demo: minutes, not days. LeNet-5 is cheap enough to keep
    # the seed's 128x128 smoke run; the ImageNet models shrink to 64x64.
    "demo": {
        "epochs": 10,
        "image_size": 64,
        "batch_size": 32,
        "max_images_per_class": 40,
        "stages": {"stage1": {"image_size": 128}},
    },
    # CI and tests: seconds per epoch on two shared cores.
    "tiny": {"epochs": 2, "image_size": 32, "batch_size": 8, "max_images_per_class": 8},
}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def parse_value(name: str, text: str) -> Any:
    """Turn the text of a `--set name=text` into the field's type."""
    kind = _field_types()[name]
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if typing.get_origin(kind) is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if kind is str or (isinstance(kind, types.UnionType) and str in typing.get_args(kind)):
            return text
    except ValueError as err:
        raise InputError(
            f"cannot read {text!r} as {getattr(kind, '__name__', kind)}: {err}", field=name
        ) from None
    raise AssertionError(f"unhandled field type {kind} for {name}")  # a new field's type


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["epochs=5", "frozen_blocks=conv1,conv2"]` -> typed values, unknown keys refused."""
    known = [f.name for f in dataclasses.fields(TrainConfig)]
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            raise InputError(f"expected key=value, got {item!r}", field="--set")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
            raise InputError(f"unknown setting {name!r}{hint}", field="--set")
        out[name] = parse_value(name, text)
    return out


def resolve_config(
    stage: str,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """The configuration of `stage` under `profile`, with `overrides` applied last."""
    if stage not in STAGES:
        raise InputError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}", field="stage")
    if profile is not None and profile not in PROFILES:
        raise InputError(
            f"unknown profile {profile!r}; known: {', '.join(PROFILES)}", field="profile"
        )
    values: dict[str, Any] = dict(STAGES[stage])
    chosen = dict(PROFILES[profile or "full"])
    # A profile may adjust single stages on top of its general settings.
    per_stage = chosen.pop("stages", {})
    values.update(chosen)
    values.update(per_stage.get(stage, {}))
    values.update(overrides or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown settings {', '.join(unknown)}", field="overrides")
    return TrainConfig(**values).validate()


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Rebuild a configuration saved as `config.json` (lists back to tuples)."""
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
    return TrainConfig(**values)


__all__ = [
    "MODELS",
    "PROFILES",
    "STAGES",
    "TrainConfig",
    "config_from_dict",
    "parse_overrides",
    "resolve_config",
]
