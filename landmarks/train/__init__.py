"""The trainer: one entry point for every TFJob replica and for a plain local run.

`python -m landmarks.train --stage stage2-resnet50 --data SPLIT --out MODEL_DIR` trains one
stage (presets in `landmarks.train.recipe`), alone or as one worker of a
MultiWorkerMirroredStrategy cluster described by `TF_CONFIG`.

Importing this package sets `TF_USE_LEGACY_KERAS=1` before TensorFlow is imported:
Keras 3's `fit` breaks under MultiWorkerMirroredStrategy with two or more workers
(keras-team/keras#20585), tf-keras works, and the variable must be set before TensorFlow
reads it, however the trainer is launched.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ info lines (oneDNN notices, CUDA probing) drown the training log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The model directory's file names, re-exported: a trained model's contract with its users.
from landmarks.artifacts import CONFIG_FILE, HISTORY_FILE, MODEL_FILE
from landmarks.train.recipe import (
    PROFILES,
    STAGES,
    TrainConfig,
    resolve_config,
)

if TYPE_CHECKING:
    from pathlib import Path


__all__ = [
    "CONFIG_FILE",
    "HISTORY_FILE",
    "MODEL_FILE",
    "PROFILES",
    "STAGES",
    "TrainConfig",
    "load_model",
    "resolve_config",
]


def load_model(model_dir: str | Path, compile: bool = False) -> Any:
    """Load a model the trainer saved (`MODEL_DIR/model.keras`, local or in an object store).

    The model takes float32 RGB images with pixel values 0..255 at the trained
    `image_size` (see `config.json` beside it) and returns class probabilities in
    `label_map.csv` order. Its preprocessing is part of the model.
    """
    from landmarks.train.models import load_saved_model

    return load_saved_model(str(model_dir), compile=compile)
