"""Images read from a local GLDv2 tree: tar shards or the unpacked a/b/c layout."""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import pytest

from landmarks.artifacts import INGEST_MANIFEST
from landmarks.errors import InputError
from landmarks.ingest import IngestOptions, run_ingest


def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> None:
    with tarfile.open(path, mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def _ingest(tmp_path: Path, ids: list[str], images_dir: Path):
    metadata = tmp_path / "train.csv"
    # GLDv1-style dead urls: with images_dir the url is only carried along.
    metadata.write_text("id,url,landmark_id\n" + "".join(f"{i},None,1\n" for i in ids))
    out = tmp_path / "out"
    options = IngestOptions(
        str(metadata), str(out), images_dir=str(images_dir), min_size=32, progress=False
    )
    result = run_ingest(options)
    with open(out / INGEST_MANIFEST, newline="") as handle:
        return result, {r["id"]: r for r in csv.DictReader(handle)}


def test_images_are_read_from_tar_shards_and_the_abc_tree(tmp_path: Path, jpeg) -> None:
    root = tmp_path / "gldv2"
    (root / "train").mkdir(parents=True)
    _tar(root / "train/images_000.tar", {"0/0/0/000aaa.jpg": jpeg(1), "0/0/0/000bbb.jpg": jpeg(2)})
    _tar(root / "train/images_001.tar", {"1/2/3/123ccc.jpg": jpeg(3), "f/f/f/fffddd.jpg": jpeg(9)})
    (root / "4/5/6").mkdir(parents=True)
    (root / "4/5/6/456eee.jpg").write_bytes(jpeg(4))
    ids = ["000aaa", "000bbb", "123ccc", "456eee", "789fff"]
    result, manifest = _ingest(tmp_path, ids, root)
    assert [manifest[i]["status"] for i in ids] == ["ok", "ok", "ok", "ok", "failed"]
    assert manifest["789fff"]["reason"].startswith("missing_in_images_dir")
    assert (tmp_path / "out/images/1/2/3/123ccc.jpg").read_bytes() == jpeg(3)
    assert result.counts["ok"] == 4


def test_compressed_shards_are_an_input_error_before_writing(tmp_path: Path, jpeg) -> None:
    root = tmp_path / "gldv2"
    root.mkdir()
    _tar(root / "images_000.tar", {"0/0/0/000aaa.jpg": jpeg(1)}, mode="w:gz")
    with pytest.raises(InputError, match="uncompressed tar") as info:
        _ingest(tmp_path, ["000aaa"], root)
    assert info.value.file == str(root / "images_000.tar")
    assert not (tmp_path / "out").exists()


def test_a_missing_images_dir_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        _ingest(tmp_path, ["000aaa"], tmp_path / "nowhere")
