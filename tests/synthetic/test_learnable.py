"""The embedded dataset is learnable: a LeNet-5 in a real TensorFlow process beats chance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from landmarks.synthetic import generate

# Runs in its own process so TensorFlow's threads, memory and Keras flavour stay out of the
# test session. Reads train.csv and the a/b/c/<id>.jpg files exactly as ingest would see them.
_TRAIN = r"""
import csv, json, os, sys
import numpy as np
from PIL import Image
import tf_keras as keras

root, classes = sys.argv[1], int(sys.argv[2])
rows = list(csv.DictReader(open(os.path.join(root, "train.csv"))))
landmarks = sorted({int(r["landmark_id"]) for r in rows})
def path(i): return os.path.join(root, "images", i[0], i[1], i[2], i + ".jpg")
x = np.stack([np.asarray(Image.open(path(r["id"])), dtype="float32") / 255 for r in rows])
y = np.array([landmarks.index(int(r["landmark_id"])) for r in rows])
order = np.random.default_rng(0).permutation(len(y))
x, y = x[order], y[order]
cut = len(y) * 3 // 4
keras.utils.set_random_seed(0)
L = keras.layers
model = keras.Sequential([
    L.Input(x.shape[1:]),
    L.Conv2D(6, 5, activation="relu"), L.MaxPooling2D(),
    L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(),
    L.Flatten(), L.Dense(120, activation="relu"), L.Dense(84, activation="relu"),
    L.Dense(classes, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
history = model.fit(x[:cut], y[:cut], validation_data=(x[cut:], y[cut:]), epochs=8,
                    batch_size=16, verbose=0)
print(json.dumps(history.history["val_accuracy"]))
"""


def test_lenet_learns_the_synthetic_landmarks_well_above_chance(tmp_path: Path) -> None:
    classes = 4
    root = generate(tmp_path / "data", classes=classes, images_per_class=60, size=64, defects=False)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_DETERMINISTIC_OPS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _TRAIN, str(root), str(classes)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = json.loads(result.stdout.strip().splitlines()[-1])
    print("validation accuracy per epoch:", accuracy)
    assert max(accuracy) >= 2.5 / classes  # chance is 1/classes
