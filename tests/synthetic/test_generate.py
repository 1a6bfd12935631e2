"""The embedded dataset: GLDv2 layout, determinism, seeded defects."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from landmarks.cli import main
from landmarks.errors import LandmarksError
from landmarks.synthetic import MAX_CLASSES, generate


def _rows(root: Path) -> list[dict[str, str]]:
    with (root / "train.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _image(root: Path, image_id: str) -> Path:
    return root / "images" / image_id[0] / image_id[1] / image_id[2] / f"{image_id}.jpg"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_generate_writes_gldv2_csvs_and_image_layout(tmp_path: Path) -> None:
    root = generate(
        tmp_path / "data", classes=3, images_per_class=5, size=48, base_url="http://h:1/"
    )
    assert root == tmp_path / "data"
    rows = _rows(root)
    assert list(rows[0]) == ["id", "url", "landmark_id"]
    assert len(rows) == 3 * 5 + 4  # four defect rows on top
    for row in rows:
        image_id = row["id"]
        assert re.fullmatch(r"[0-9a-f]{16}", image_id)
        assert row["url"] == f"http://h:1/{image_id[0]}/{image_id[1]}/{image_id[2]}/{image_id}.jpg"
    landmark_ids = sorted({int(r["landmark_id"]) for r in rows})
    assert len(landmark_ids) == 3
    assert landmark_ids != list(range(landmark_ids[0], landmark_ids[0] + 3))  # sparse, like GLDv2

    with (root / "train_label_to_category.csv").open(newline="") as handle:
        categories = list(csv.DictReader(handle))
    assert [int(c["landmark_id"]) for c in categories] == landmark_ids
    for category in categories:
        assert re.fullmatch(
            r"http://commons\.wikimedia\.org/wiki/Category:\w+", category["category"]
        )

    loaded = []
    for path in (root / "images").rglob("*.jpg"):
        try:
            with Image.open(path) as image:
                image.load()
        except OSError:  # the truncated defect
            continue
        loaded.append((image.format, image.mode, image.size))
    assert loaded == [("JPEG", "RGB", (48, 48))] * (3 * 5 + 1)


def test_generate_is_byte_identical_for_a_seed(tmp_path: Path) -> None:
    first = _tree(generate(tmp_path / "a", classes=2, images_per_class=4, size=32, seed=3))
    second = _tree(generate(tmp_path / "b", classes=2, images_per_class=4, size=32, seed=3))
    assert first == second
    other = _tree(generate(tmp_path / "c", classes=2, images_per_class=4, size=32, seed=4))
    assert set(other) != set(first)


def test_generate_seeds_missing_truncated_and_duplicate_images(tmp_path: Path) -> None:
    root = generate(tmp_path / "data", classes=4, images_per_class=6, size=32)
    missing, broken, digests = [], [], Counter()
    by_digest: dict[str, list[dict[str, str]]] = {}
    for row in _rows(root):
        path = _image(root, row["id"])
        if not path.exists():
            missing.append(row)
            continue
        try:
            with Image.open(path) as image:
                image.load()
        except OSError:
            broken.append(row)
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        digests[digest] += 1
        by_digest.setdefault(digest, []).append(row)
    assert len(missing) == 2
    assert len(broken) == 1
    (twice,) = [d for d, n in digests.items() if n > 1]
    copies = by_digest[twice]
    assert len(copies) == 2
    assert copies[0]["id"] != copies[1]["id"]
    assert copies[0]["landmark_id"] == copies[1]["landmark_id"]
    assert sum(digests.values()) == 4 * 6 + 1


def test_generate_without_defects_has_only_distinct_valid_images(tmp_path: Path) -> None:
    root = generate(tmp_path / "data", classes=2, images_per_class=5, size=32, defects=False)
    rows = _rows(root)
    assert len(rows) == 10
    digests = set()
    for row in rows:
        with Image.open(_image(root, row["id"])) as image:
            image.load()
        digests.add(hashlib.sha256(_image(root, row["id"]).read_bytes()).hexdigest())
    assert len(digests) == 10
    assert Counter(r["landmark_id"] for r in rows).most_common()[0][1] == 5


def test_regenerating_removes_images_of_the_previous_dataset(tmp_path: Path) -> None:
    root = tmp_path / "data"
    generate(root, classes=3, images_per_class=4, size=32, seed=1)
    generate(root, classes=2, images_per_class=2, size=32, seed=2, defects=False)
    on_disk = {p.stem for p in (root / "images").rglob("*.jpg")}
    assert on_disk == {r["id"] for r in _rows(root)}


def test_generate_refuses_bad_arguments_and_foreign_directories(tmp_path: Path) -> None:
    with pytest.raises(LandmarksError, match=f"between 2 and {MAX_CLASSES}"):
        generate(tmp_path / "a", classes=MAX_CLASSES + 1)
    with pytest.raises(LandmarksError, match="images_per_class"):
        generate(tmp_path / "a", images_per_class=0)
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(LandmarksError, match=r"holds no train\.csv"):
        generate(foreign, classes=2, images_per_class=1, size=32)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_make_data_command_writes_a_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    argv = ["make-data", "--out", str(out), "--classes", "2", "--images-per-class", "3"]
    assert main([*argv, "--size", "32", "--no-defects", "--base-url", "http://x:9"]) == 0
    rows = _rows(out)
    assert len(rows) == 6
    assert all(r["url"].startswith("http://x:9/") for r in rows)
    assert "dataset written to" in capsys.readouterr().out
