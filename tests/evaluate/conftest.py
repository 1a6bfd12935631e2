"""A split and two trained colour models, evaluated once for the whole module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.evaluate.builders import make_colour_model, make_split, write_image

# Landmark images: colour decides the prediction of the "good" model (R->101, G->202,
# B->303); intensity decides its confidence. b2 is blue in the green folder: a mistake.
TEST_IMAGES = {
    "101": {"a1": (250, 0, 0), "a2": (150, 0, 0)},
    "202": {"b1": (0, 220, 0), "b2": (0, 0, 180)},
    "303": {"c1": (0, 0, 100)},
}
# No landmark. d1 is confidently "red" (ranked 2nd); d2 is black: equal logits, 1/3 each.
DISTRACTORS = {"d1": (235, 0, 0), "d2": (0, 0, 0)}


@dataclass
class World:
    split: Path
    distractors: Path
    good: Path  # colour -> class, outputs logits (no softmax layer)
    swapped: Path  # colour -> the wrong class, softmax outputs
    root: Path


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("evaluate-world")
    split = make_split(root / "split", TEST_IMAGES)
    for image_id, rgb in DISTRACTORS.items():
        write_image(root / "distractors" / f"{image_id}.jpg", rgb)
    good = make_colour_model(root / "models" / "good", softmax=False, history_epochs=5)
    swapped = make_colour_model(root / "models" / "swapped", permutation=(1, 2, 0))
    return World(split, root / "distractors", good, swapped, root)
