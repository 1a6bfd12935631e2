import shutil
from pathlib import Path

import pytest

from landmarks import storage
from landmarks.artifacts import LABEL_MAP
from landmarks.errors import InputError
from landmarks.split import parse_label_map
from landmarks.train.data import load_split, stage_locally
from tests.train.splits import make_split


@pytest.fixture
def split(tmp_path: Path) -> Path:
    return make_split(tmp_path / "split", classes=3, train=4, validation=2)


def test_class_indices_follow_the_label_map_not_the_directory_order(split: Path) -> None:
    data = load_split(str(split))
    # Folders list as 10, 13, 7; the label map says 7, 10, 13.
    assert data.label_map.landmark_ids == ("7", "10", "13")
    folder_of = {
        label: Path(p).parent.name
        for p, label in zip(data.train.paths, data.train.labels, strict=True)
    }
    assert folder_of == {0: "7", 1: "10", 2: "13"}
    assert len(data.train) == 12 and len(data.validation) == 6


def test_max_images_per_class_caps_each_class(split: Path) -> None:
    data = load_split(str(split), max_images_per_class=1)
    assert sorted(data.train.labels) == [0, 1, 2]


def test_unknown_class_in_validation_names_the_folder(split: Path) -> None:
    stray = split / "validation" / "999"
    stray.mkdir()
    shutil.copy(next((split / "validation" / "7").iterdir()), stray / "x.jpg")
    with pytest.raises(InputError, match=r"validation/999: class folder '999' is not in label_map"):
        load_split(str(split))


def test_class_without_training_images_names_the_class(split: Path) -> None:
    for image in (split / "train" / "10").iterdir():
        image.unlink()
    with pytest.raises(InputError, match=r"train/10: class '10' \(class_index 1\) has no train"):
        load_split(str(split))


def test_a_class_may_lack_validation_images(split: Path) -> None:
    shutil.rmtree(split / "validation" / "13")
    assert len(load_split(str(split)).validation) == 4


def test_non_jpeg_file_and_loose_file_are_named(split: Path) -> None:
    (split / "train" / "7" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"train/7/notes.txt: not a JPEG file"):
        load_split(str(split))
    (split / "train" / "7" / "notes.txt").unlink()
    (split / "train" / "loose.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match=r"train/loose.jpg: images belong in"):
        load_split(str(split))


def test_missing_label_map_says_what_a_split_is(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"label_map\.csv: missing: a split directory"):
        load_split(str(tmp_path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("class_index,name\n0,a\n", "row 1, field 'landmark_id': missing column"),
        (
            "class_index,landmark_id,name\n0,7,a\n2,9,b\n",
            "row 3, field 'class_index'.*expected class_index 1",
        ),
        ("class_index,landmark_id,name\nx,7,a\n", "row 2, field 'class_index': not an integer"),
        ("class_index,landmark_id,name\n0,7,a\n1,7,b\n", "row 3, field 'landmark_id'.*row 2"),
        ("class_index,landmark_id,name\n", "no classes"),
    ],
)
def test_bad_label_map_names_row_and_field(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_label_map(text, LABEL_MAP)


@pytest.mark.parametrize(
    ("label_map", "where"),
    [
        # The trainer used to accept both; the split never writes either.
        ("class_index,landmark_id\n0,7\n1,10\n2,13\n", "row 1, field 'name'"),
        ("class_index,landmark_id,name\n0,7,a\n1,ten,b\n2,13,c\n", "row 3, field 'landmark_id'"),
    ],
)
def test_split_whose_label_map_the_split_could_not_have_written_is_refused(
    split: Path, label_map: str, where: str
) -> None:
    (split / LABEL_MAP).write_text(label_map)
    with pytest.raises(InputError, match=where) as info:
        load_split(str(split))
    assert info.value.file == str(split / LABEL_MAP)


def test_gcs_split_is_staged_through_the_emulator(
    split: Path, gcs_bucket: str, tmp_path: Path
) -> None:
    root = storage.join(gcs_bucket, "splits/run1")
    storage.upload_tree(split, root)
    local = stage_locally(root, str(tmp_path / "cache"))
    assert not storage.is_gcs(local)
    data = load_split(local)
    assert data.label_map.landmark_ids == ("7", "10", "13") and len(data.train) == 12
    assert all(Path(p).is_file() for p in data.train.paths)
