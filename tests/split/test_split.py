"""The split stage on local disk: layout, filters, determinism, errors, re-runs."""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from landmarks.artifacts import (
    INGEST_LABELS,
    INGEST_MANIFEST,
    LABEL_MAP,
    SPLIT_MANIFEST,
    SPLIT_SUMMARY,
)
from landmarks.errors import InputError, LandmarksError
from landmarks.split import (
    SPLITS,
    SplitOptions,
    allocate,
    read_label_map,
    read_split_manifest,
    run_split,
)
from tests.split.ingest_dir import IngestDir, make_ingest, tiny_jpeg


def _split(ingest: str, out: Path | str, **kwargs) -> object:
    return run_split(SplitOptions(ingest_dir=ingest, out=str(out), progress=False, **kwargs))


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_split_writes_class_folders_manifest_label_map_and_summary(tmp_path: Path) -> None:
    ingest = make_ingest(
        tmp_path / "ingest", {5071: 10, 12: 6, 900: 3}, labels={12: "Eiffel Tower", 900: ""}
    )
    out = tmp_path / "split"
    result = _split(ingest, out)

    labels = read_label_map(str(out))
    assert [(e.class_index, e.landmark_id, e.name) for e in labels] == [
        (0, 12, "Eiffel Tower"),
        (1, 900, ""),
        (2, 5071, ""),  # not in labels.csv: name left empty
    ]
    rows = read_split_manifest(str(out))
    assert len(rows) == 19  # the failed row is not split
    for row in rows:
        assert row.path == f"{row.split}/{row.landmark_id}/{row.id}.jpg"
        assert row.class_index == {12: 0, 900: 1, 5071: 2}[row.landmark_id]
    written = {p for p in _files(out) if p.endswith(".jpg")}
    assert written == {r.path for r in rows}
    assert _files(out) - written == {SPLIT_MANIFEST, LABEL_MAP, SPLIT_SUMMARY}
    src = Path(ingest, "images", rows[0].id[0], rows[0].id[1], rows[0].id[2], f"{rows[0].id}.jpg")
    assert (out / rows[0].path).read_bytes() == src.read_bytes()

    summary = json.loads((out / SPLIT_SUMMARY).read_text())
    for split in SPLITS:  # every class, even the 3-image one, appears in every split
        assert all(summary["splits"][split][str(lm)] >= 1 for lm in (12, 900, 5071))
    assert summary["totals"] == {"train": 13, "validation": 3, "test": 3, "all": 19}
    assert summary["splits"]["train"] == {"12": 4, "900": 1, "5071": 8}
    assert summary["filters"]["min_images"] == 3
    assert result.totals == summary["totals"]
    assert result.stats["classes"] == 3
    header = (out / SPLIT_MANIFEST).read_text().splitlines()[0]
    assert header == "id,landmark_id,class_index,split,sha256,path"


def test_same_seed_gives_byte_identical_outputs_and_another_seed_differs(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 20, 2: 15, 3: 9})
    names = (SPLIT_MANIFEST, LABEL_MAP, SPLIT_SUMMARY)
    _split(ingest, tmp_path / "a", seed=7)
    _split(ingest, tmp_path / "b", seed=7)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    _split(ingest, tmp_path / "c", seed=8)
    assert (tmp_path / "a" / SPLIT_MANIFEST).read_bytes() != (
        tmp_path / "c" / SPLIT_MANIFEST
    ).read_bytes()


def test_order_of_ingest_rows_does_not_change_the_split(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 20, 2: 15, 3: 9})
    _split(ingest, tmp_path / "a", seed=3)
    manifest = Path(ingest, INGEST_MANIFEST)
    header, *rows = manifest.read_text().splitlines()
    random.Random(0).shuffle(rows)
    manifest.write_text("\n".join([header, *rows]) + "\n")
    _split(ingest, tmp_path / "b", seed=3)
    assert (tmp_path / "a" / SPLIT_MANIFEST).read_bytes() == (
        tmp_path / "b" / SPLIT_MANIFEST
    ).read_bytes()


@pytest.mark.parametrize("case", range(8))
def test_each_picture_sits_in_one_split_folder_and_ratios_hold(tmp_path: Path, case: int) -> None:
    # Judged from the files written, by their bytes: not from the manifest's sha256 column.
    rng = random.Random(case)
    ingest = IngestDir(tmp_path / "ingest")
    landmarks = rng.sample(range(1, 500), rng.randint(3, 5))
    pictures: dict[int, bytes] = {}
    for landmark in landmarks:
        own = [tiny_jpeg(len(pictures) + i) for i in range(rng.randint(8, 20))]
        pictures.update((len(pictures), data) for data in own)
        for data in own:
            ingest.add(landmark, data)
        for data in rng.sample(own, rng.randint(1, 4)):  # shown again in its landmark
            ingest.add(landmark, data)
    for _ in range(2):  # one picture under two landmarks
        data = tiny_jpeg(10_000 + len(pictures))
        pictures[len(pictures)] = data
        a, b = rng.sample(landmarks, 2)
        ingest.add(a, data)
        ingest.add(b, data)
        ingest.add(b, data)
    out = tmp_path / "split"
    _split(ingest.write(), out, seed=rng.randrange(1 << 30))

    folders_of: dict[bytes, set[str]] = defaultdict(set)
    written = 0
    for name in SPLITS:
        for path in (out / name).rglob("*.jpg"):
            folders_of[path.read_bytes()].add(name)
            written += 1
    assert written == len(ingest.rows)  # every row's image, once
    assert set(folders_of) == set(pictures.values())
    assert {k: v for k, v in folders_of.items() if len(v) != 1} == {}
    # Per landmark the split is within one picture of the ratios, so the totals are within
    # one picture per landmark.
    for name, ratio in zip(SPLITS, (0.8, 0.1, 0.1), strict=True):
        in_split = sum(1 for folders in folders_of.values() if name in folders)
        assert abs(in_split - ratio * len(pictures)) <= len(landmarks), (name, in_split)


def test_allocation_gives_each_split_an_image_from_three_images_on() -> None:
    for ratios in [(0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.34, 0.33, 0.33), (0.98, 0.01, 0.01)]:
        for n in range(1, 250):
            counts = allocate(n, ratios)
            assert sum(counts) == n
            if n >= 3:
                assert min(counts) >= 1
            if all(ratio * n >= 1 for ratio in ratios):  # minimums not binding: ratios decide
                for count, ratio in zip(counts, ratios, strict=True):
                    assert abs(count - ratio * n) < 1
    assert allocate(1, (0.8, 0.1, 0.1)) == (1, 0, 0)
    assert allocate(2, (0.8, 0.1, 0.1)) == (1, 1, 0)
    assert allocate(10, (0.8, 0.1, 0.1)) == (8, 1, 1)
    assert allocate(3, (0.8, 0.1, 0.1)) == (1, 1, 1)
    assert allocate(0, (0.8, 0.1, 0.1)) == (0, 0, 0)


def test_min_images_top_k_and_cap_filter_landmarks(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {40: 12, 10: 8, 30: 8, 20: 5, 50: 2})
    result = _split(ingest, tmp_path / "split", min_images=3, top_k=3, max_per_class=6)
    # 50 is below min_images; of the rest, 40 is largest and 10 beats 30 at equal size
    # (lower landmark id) and 20 is the smallest.
    assert [e.landmark_id for e in result.label_map] == [10, 30, 40]
    per_class = defaultdict(int)
    for row in result.rows:
        per_class[row.landmark_id] += 1
    assert per_class == {10: 6, 30: 6, 40: 6}
    assert result.summary["dropped"] == {
        "classes_below_min_images": 1,
        "classes_beyond_top_k": 1,
        "images_beyond_max_per_class": 6 + 2 + 2,
    }
    assert result.summary["filters"] == {
        "min_images": 3,
        "top_k": 3,
        "max_per_class": 6,
        "ratios": [0.8, 0.1, 0.1],
        "seed": 0,
    }


def test_min_images_counts_distinct_pictures_not_rows(tmp_path: Path) -> None:
    ingest = IngestDir(tmp_path / "ingest")
    ingest.add_class(1, 5)
    ingest.add_class(2, 5)
    for _ in range(4):  # four rows, one picture
        ingest.add(3, tiny_jpeg(999))
    result = _split(ingest.write(), tmp_path / "split", min_images=2)
    assert [e.landmark_id for e in result.label_map] == [1, 2]


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ((0.8, 0.1, 0.2), "must sum to 1"),
        ((0.7, 0.1, 0.1), "must sum to 1"),
        ((1.0, 0.0, 0.0), "each must be above 0"),
        ((0.9, 0.2, -0.1), "each must be above 0"),
    ],
)
def test_ratios_must_be_positive_and_sum_to_one(
    tmp_path: Path, ratios: tuple[float, float, float], message: str
) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 5, 2: 5})
    with pytest.raises(LandmarksError, match=message):
        _split(ingest, tmp_path / "split", ratios=ratios)
    assert not (tmp_path / "split").exists()


def test_filters_leaving_fewer_than_two_landmarks_fail_clearly(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 10, 2: 4, 3: 2})
    with pytest.raises(LandmarksError, match=r"leave 1 landmark\(s\).*at least 2.*1: 10"):
        _split(ingest, tmp_path / "split", min_images=5)
    with pytest.raises(LandmarksError, match=r"top_k must be at least 2"):
        _split(ingest, tmp_path / "split", top_k=1)


def test_split_left_empty_by_tiny_landmarks_fails_clearly(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 2, 2: 2, 3: 1})
    with pytest.raises(LandmarksError, match=r"split 'test' would be empty.*--min-images 3"):
        _split(ingest, tmp_path / "split", min_images=1)
    assert not (tmp_path / "split").exists()


def _break_row(manifest: Path, row: int, column: str, value: str) -> None:
    with manifest.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    records[row - 2][column] = value  # row counts file lines; line 1 is the header
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("landmark_id", "tour-eiffel", "non-negative integer"),
        ("sha256", "", "64 hex characters"),
        ("path", "../../etc/passwd", "relative to the ingest directory"),
        ("id", "a/b", "invalid id"),
    ],
)
def test_bad_manifest_row_names_file_row_and_field(
    tmp_path: Path, column: str, value: str, message: str
) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 5, 2: 5})
    _break_row(Path(ingest, INGEST_MANIFEST), 4, column, value)
    with pytest.raises(InputError, match=message) as caught:
        _split(ingest, tmp_path / "split")
    assert caught.value.file.endswith(INGEST_MANIFEST)
    assert (caught.value.row, caught.value.field) == (4, column)
    assert f"manifest.csv, row 4, field '{column}'" in str(caught.value)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("class_index", "first", "not an integer: 'first'"),
        ("landmark_id", "", "not an integer: ''"),
        ("split", "holdout", "split must be one of train, validation, test"),
    ],
)
def test_bad_split_manifest_row_names_file_row_and_field(
    tmp_path: Path, column: str, value: str, message: str
) -> None:
    out = tmp_path / "split"
    _split(make_ingest(tmp_path / "ingest", {1: 5, 2: 5}), out)
    _break_row(out / SPLIT_MANIFEST, 3, column, value)
    with pytest.raises(InputError, match=message) as caught:
        read_split_manifest(str(out))
    assert caught.value.file.endswith(SPLIT_MANIFEST)
    assert (caught.value.row, caught.value.field) == (3, column)


def test_missing_column_and_missing_manifest_are_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"manifest.csv: not found: is this an ingest output"):
        _split(str(tmp_path / "empty"), tmp_path / "split")
    ingest = make_ingest(tmp_path / "ingest", {1: 5, 2: 5})
    manifest = Path(ingest, INGEST_MANIFEST)
    manifest.write_text(manifest.read_text().replace("sha256", "checksum", 1))
    with pytest.raises(InputError, match=r"row 1: missing column.*sha256"):
        _split(ingest, tmp_path / "split")


def test_duplicate_ok_id_is_reported_with_both_rows(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 5, 2: 5})
    manifest = Path(ingest, INGEST_MANIFEST)
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([*lines, lines[3]]) + "\n")
    with pytest.raises(InputError, match=r"row 13, field 'id': id \w+ also on row 4"):
        _split(ingest, tmp_path / "split")


def test_rerun_replaces_previous_split_without_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "split"
    _split(make_ingest(tmp_path / "one", {1: 10, 2: 10, 3: 10}), out)
    second = _split(make_ingest(tmp_path / "two", {7: 5, 8: 5}), out)
    assert _files(out) == {r.path for r in second.rows} | {
        SPLIT_MANIFEST,
        LABEL_MAP,
        SPLIT_SUMMARY,
    }
    assert sorted(p.name for p in (out / "train").iterdir()) == ["7", "8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "split", "two"]  # no temp dirs


def test_failed_rerun_keeps_previous_split_intact(tmp_path: Path) -> None:
    out = tmp_path / "split"
    _split(make_ingest(tmp_path / "one", {1: 10, 2: 10}), out)
    before = {p: (out / p).read_bytes() for p in _files(out)}
    broken = make_ingest(tmp_path / "two", {7: 5, 8: 5})
    victim = next(Path(broken, "images").rglob("*.jpg"))
    victim.unlink()
    with pytest.raises(InputError, match=f"image .*{victim.name} not found") as caught:
        _split(broken, out)
    assert caught.value.field == "path"
    assert {p: (out / p).read_bytes() for p in _files(out)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "split", "two"]


def test_refuses_to_replace_a_directory_that_is_not_a_split(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 5, 2: 5})
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(LandmarksError, match=r"holds thesis.tex.*refusing"):
        _split(ingest, out)
    assert (out / "thesis.tex").read_text() == "years of work"
    with pytest.raises(LandmarksError, match=r"must not be the ingest directory or inside it"):
        _split(ingest, Path(ingest, "split"))


def test_bad_labels_row_is_named_and_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 5, 2: 5}, labels={1: "Alhambra", 2: "Petra"})
    manifest = Path(ingest, INGEST_MANIFEST)
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())  # saved by a spreadsheet
    labels = Path(ingest, INGEST_LABELS)
    labels.write_text(labels.read_text() + "Q42,Douglas\n")
    with pytest.raises(InputError, match=r"labels\.csv, row 4, field 'landmark_id'"):
        _split(ingest, tmp_path / "split")
    labels.write_text("\n".join(labels.read_text().splitlines()[:-1]) + "\n")
    result = _split(ingest, tmp_path / "split")
    assert [e.name for e in result.label_map] == ["Alhambra", "Petra"]
