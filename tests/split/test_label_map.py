"""label_map.csv: the one parser every stage reads it with, and the rules it enforces."""

from __future__ import annotations

from pathlib import Path

import pytest

from landmarks import storage
from landmarks.artifacts import LABEL_MAP
from landmarks.errors import InputError
from landmarks.split import SplitOptions, parse_label_map, read_label_map, run_split
from tests.split.ingest_dir import make_ingest

GOOD = "class_index,landmark_id,name\n0,12,Eiffel Tower\n1,900,\n"


def test_label_map_the_split_writes_reads_back_with_ids_names_and_text(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {900: 3, 12: 3}, labels={12: " Eiffel Tower "})
    out = tmp_path / "split"
    run_split(SplitOptions(ingest_dir=ingest, out=str(out), progress=False))

    labels = read_label_map(str(out))
    assert labels.landmark_ids == ("12", "900")  # strings: the class folder names
    assert labels.names == ("Eiffel Tower", "")
    assert labels.index_of() == {"12": 0, "900": 1}
    assert len(labels) == labels.num_classes == 2
    assert labels.source == str(out / LABEL_MAP)
    assert labels.text == (out / LABEL_MAP).read_text()  # what the trainer copies


@pytest.mark.parametrize(
    ("text", "row", "field", "message"),
    [
        # Stricter than the trainer and the evaluation used to be: the header is the
        # split's, exactly, and a landmark id is what the split writes (a canonical integer).
        ("class_index,landmark_id\n0,7\n", 1, "name", "missing name"),
        ("class_index,landmark_id,name,extra\n0,7,a,x\n", 1, None, "header must be exactly"),
        ("landmark_id,class_index,name\n7,0,a\n", 1, None, "header must be exactly"),
        ("class_index,landmark_id,name\n0,abc,a\n", 2, "landmark_id", "not a landmark id"),
        ("class_index,landmark_id,name\n0,-7,a\n", 2, "landmark_id", "not a landmark id"),
        ("class_index,landmark_id,name\n0,007,a\n", 2, "landmark_id", "no leading zeros"),
        ("class_index,landmark_id,name\n0,7\n", 2, None, "expected 3 fields"),
        ("class_index,landmark_id,name\n0,7,a,b\n", 2, None, "expected 3 fields"),
        # Stricter than the split's own reader used to be.
        ("class_index,landmark_id,name\n0,,a\n", 2, "landmark_id", "empty landmark_id"),
        ("class_index,landmark_id,name\n0,7,a\n1,7,b\n", 3, "landmark_id", "class_index 0"),
        ("class_index,landmark_id,name\n-0,7,a\n", 2, "class_index", "not an integer >= 0"),
        ("class_index,landmark_id,name\n", None, None, "no classes"),
    ],
)
def test_bad_label_map_is_refused_naming_file_row_and_field(
    text: str, row: int | None, field: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_label_map(text, "split/label_map.csv")
    assert (info.value.file, info.value.row, info.value.field) == (
        "split/label_map.csv",
        row,
        field,
    )


def test_names_are_stripped_and_may_be_empty() -> None:
    labels = parse_label_map("class_index,landmark_id,name\n 0 , 7 ,  Big Ben \n1,8,\n", "x")
    assert [(e.class_index, e.landmark_id, e.name) for e in labels] == [
        (0, 7, "Big Ben"),
        (1, 8, ""),
    ]


def test_missing_or_undecodable_label_map_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="label map not found") as info:
        read_label_map(str(tmp_path))
    assert info.value.file == str(tmp_path / LABEL_MAP)
    (tmp_path / LABEL_MAP).write_bytes(b"class_index,landmark_id,name\n0,7,\xff\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_label_map(str(tmp_path))


def test_label_map_on_gcs_is_read_with_its_uri(gcs_bucket: str) -> None:
    root = storage.join(gcs_bucket, "split")
    storage.write_bytes(storage.join(root, LABEL_MAP), GOOD.encode())
    labels = read_label_map(root)
    assert labels.landmark_ids == ("12", "900") and labels.source == f"{root}/{LABEL_MAP}"
