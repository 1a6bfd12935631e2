"""Bad metadata and label files: file-level problems stop early, row-level ones fail the row."""

from __future__ import annotations

from pathlib import Path

import pytest

from landmarks.errors import InputError
from landmarks.ingest import IngestOptions, run_ingest
from landmarks.ingest.metadata import category_name, read_labels, read_metadata

GOOD = "0123456789abcdef,https://example.org/a.jpg,7"


def _errors(meta) -> dict[str, str]:
    return dict(zip(meta.rows["id"], meta.rows["error"], strict=True))


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("id,url\n" + "abc,https://x.org/a.jpg\n", "landmark_id", "missing column"),
        ("id,url,landmark_id,extra\nabc,https://x.org/a.jpg,1,z\n", "extra", "unexpected column"),
        ("id,url,id\nabc,https://x.org/a.jpg,1\n", "id", "appears twice"),
    ],
)
def test_header_problems_name_file_row_and_field(write_csv, text, field, message) -> None:
    path = write_csv(text)
    with pytest.raises(InputError, match=message) as info:
        read_metadata(path)
    assert (info.value.file, info.value.row, info.value.field) == (path, 1, field)
    assert path in str(info.value) and "row 1" in str(info.value)


def test_columns_in_any_order_are_accepted(write_csv) -> None:
    meta = read_metadata(write_csv(["landmark_id,url,id", "7,https://x.org/a.jpg,abcdef"]))
    assert meta.valid[["id", "landmark_id"]].values.tolist() == [["abcdef", "7"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("id,url,landmark_id\n", "no data rows"),
        ("id,url,landmark_id\n\n\n", "no data rows"),
    ],
)
def test_empty_files_are_rejected(write_csv, text, message) -> None:
    path = write_csv(text)
    with pytest.raises(InputError, match=message) as info:
        read_metadata(path)
    assert info.value.file == path


def test_missing_file_and_non_utf8_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_metadata(str(tmp_path / "nope.csv"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"id,url,landmark_id\n" + GOOD.encode() + b"\ncaf\xe9id,https://x.org/b,1\n")
    with pytest.raises(InputError, match="UTF-8") as info:
        read_metadata(str(latin))
    assert info.value.row == 3


@pytest.mark.parametrize(
    ("bad_id", "explains"),
    [
        ("../escape", "'..'"),
        ("..", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("C:\\\\win", "absolute path"),
        ("ab/cdef", "path separator"),
        ("ab\\\\cdef", "path separator"),
        ("", "empty id"),
        ("ab", "shorter than 3"),
        ("abc.jpg", "characters outside"),
        ("ab cd", "characters outside"),
        ("x" * 129, "longer than 128"),
    ],
)
def test_unsafe_or_malformed_ids_fail_their_row_only(write_csv, bad_id, explains) -> None:
    path = write_csv(["id,url,landmark_id", GOOD, f'"{bad_id}",https://example.org/b.jpg,3'])
    meta = read_metadata(path)
    assert meta.valid["id"].tolist() == ["0123456789abcdef"]
    (error,) = meta.invalid["error"].tolist()
    assert error.startswith("invalid_id: row 3, field 'id'")
    assert explains in error


@pytest.mark.parametrize("landmark", ["x1", "1.5", "-3", "", "1e3", "99999999999999999999"])
def test_non_integer_landmark_ids_fail_their_row(write_csv, landmark) -> None:
    meta = read_metadata(
        write_csv(["id,url,landmark_id", GOOD, f"bbbbbb,https://x.org/b,{landmark}"])
    )
    assert _errors(meta)["bbbbbb"].startswith("invalid_landmark_id: row 3, field 'landmark_id'")
    assert len(meta.valid) == 1


@pytest.mark.parametrize(
    ("url", "explains"),
    [
        ("ftp://example.org/a.jpg", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("None", "has no scheme"),
        ("", "empty url"),
        ("https://", "no host"),
        ("gs://bucket-only", "no host or object"),
    ],
)
def test_urls_other_than_http_https_gs_fail_their_row(write_csv, url, explains) -> None:
    meta = read_metadata(write_csv(["id,url,landmark_id", GOOD, f"cccccc,{url},1"]))
    error = _errors(meta)["cccccc"]
    assert error.startswith("invalid_url: row 3, field 'url'")
    assert explains in error


def test_gs_and_uppercase_http_urls_are_valid(write_csv) -> None:
    meta = read_metadata(
        write_csv(["id,url,landmark_id", "aaaaaa,gs://b/k/a.jpg,1", "bbbbbb,HTTPS://X.org/b,2"])
    )
    assert len(meta.valid) == 2


def test_urls_are_not_checked_when_images_come_from_a_directory(write_csv) -> None:
    meta = read_metadata(write_csv(["id,url,landmark_id", "aaaaaa,None,1"]), check_urls=False)
    assert len(meta.valid) == 1


def test_duplicate_ids_with_different_urls_fail_every_occurrence(write_csv) -> None:
    path = write_csv(
        [
            "id,url,landmark_id",
            "aaaaaa,https://x.org/1.jpg,1",
            GOOD,
            "aaaaaa,https://x.org/2.jpg,1",
            "bbbbbb,https://x.org/3.jpg,1",
            "bbbbbb,https://x.org/3.jpg,2",
        ]
    )
    meta = read_metadata(path)
    assert meta.valid["id"].tolist() == ["0123456789abcdef"]
    errors = meta.invalid["error"].tolist()
    assert errors[0].startswith("conflicting_id: row 2, field 'url'") and "row(s) 4" in errors[0]
    assert errors[1].startswith("conflicting_id: row 4, field 'url'") and "row(s) 2" in errors[1]
    assert errors[2].startswith("conflicting_id: row 5, field 'landmark_id'")


def test_exact_repeated_rows_are_collapsed(write_csv) -> None:
    meta = read_metadata(write_csv(["id,url,landmark_id", GOOD, GOOD, GOOD]))
    assert len(meta.rows) == 1 and meta.collapsed == 2 and len(meta.valid) == 1


def test_rows_with_the_wrong_number_of_fields_fail_alone(write_csv) -> None:
    path = write_csv(
        ["id,url,landmark_id", "aaaaaa,https://x.org/a,b.jpg,1", "bbbbbb,https://x.org/b", GOOD]
    )
    meta = read_metadata(path)
    assert meta.valid["id"].tolist() == ["0123456789abcdef"]
    assert [e.split(":")[0] for e in meta.invalid["error"]] == ["bad_row", "bad_row"]
    assert "row 2: 4 field(s), expected 3" in meta.invalid["error"].iloc[0]


def test_row_numbers_are_file_lines_even_after_blank_lines(write_csv) -> None:
    meta = read_metadata(write_csv(["id,url,landmark_id", GOOD, "", "", "ab,https://x.org/b,1"]))
    assert meta.invalid["error"].iloc[0].startswith("invalid_id: row 5,")


def test_a_file_without_any_valid_row_is_a_file_error(write_csv) -> None:
    path = write_csv(["id,url,landmark_id", "../x,https://x.org/a,1", "ok_id,ftp://x/b,1"])
    with pytest.raises(InputError, match=r"no valid rows \(2 rejected\).*invalid_id: row 2"):
        read_metadata(path)


def test_limit_reads_only_the_first_rows(write_csv) -> None:
    rows = ["id,url,landmark_id"] + [f"id{n:04d},https://x.org/{n},1" for n in range(50)]
    rows.append("not,a,valid,row,at,all")
    meta = read_metadata(write_csv(rows), limit=10)
    assert meta.rows["id"].tolist() == [f"id{n:04d}" for n in range(10)]


def test_a_bad_file_writes_nothing(write_csv, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError):
        run_ingest(IngestOptions(write_csv("id,url\nabc,https://x.org\n"), str(out)))
    labels = write_csv("landmark_id,category\nseven,http://c/Category:X\n", name="labels.csv")
    with pytest.raises(InputError, match="not a non-negative integer") as info:
        run_ingest(IngestOptions(write_csv(["id,url,landmark_id", GOOD]), str(out), labels=labels))
    assert (info.value.file, info.value.row, info.value.field) == (labels, 2, "landmark_id")
    assert not out.exists()


def test_labels_keep_wanted_landmarks_and_derive_names(write_csv) -> None:
    path = write_csv(
        [
            "landmark_id,category",
            "1,http://commons.wikimedia.org/wiki/Category:Eiffel_Tower",
            "2,https://commons.wikimedia.org/wiki/Category:S%C3%A3o_Paulo_Cathedral",
            "3,http://commons.wikimedia.org/wiki/Category:Unused",
        ],
        name="labels.csv",
    )
    assert read_labels(path, {1, 2}) == {1: "Eiffel Tower", 2: "São Paulo Cathedral"}
    assert category_name("Category:Big_Ben") == "Big Ben"


def test_labels_with_conflicting_categories_are_rejected(write_csv) -> None:
    path = write_csv(
        ["landmark_id,category", "1,http://c/Category:A", "1,http://c/Category:B"], name="l.csv"
    )
    with pytest.raises(InputError, match="already has category") as info:
        read_labels(path)
    assert (info.value.row, info.value.field) == (3, "category")
