"""A whole ingest over hostile files: the run finishes, every bad file has its reason.

The corpus (tests/ingest/hostile.py) is served over real HTTP from 127.0.0.1 and ingested
by the `landmarks ingest` command in its own process, after an earlier run has already
kept some images: that work must survive, and no bomb, truncation or odd mode may turn
into exit status 1.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from landmarks.artifacts import INGEST_MANIFEST
from landmarks.cli import main
from landmarks.ingest import IngestOptions, run_ingest
from landmarks.ingest.images import MAX_PIXELS
from tests.ingest.hostile import corpus, photo, with_orientation
from tests.support.fault_server import FaultServer, Reply


def _manifest(out: Path) -> dict[str, dict[str, str]]:
    with open(out / INGEST_MANIFEST, newline="") as handle:
        return {r["id"]: r for r in csv.DictReader(handle)}


def test_ingest_records_every_hostile_file_and_keeps_the_good_ones(
    server: FaultServer, jpeg, tmp_path: Path
) -> None:
    earlier = {f"old{n:03d}": server.route(f"/old{n}.jpg", Reply.ok(jpeg(n))) for n in range(3)}
    cases = {f"bad{n:03d}": case for n, case in enumerate(corpus())}
    urls = {i: server.route(f"/{c.name}", Reply.ok(c.data)) for i, c in cases.items()}
    out = tmp_path / "out"
    first = tmp_path / "first.csv"
    first.write_text("id,url,landmark_id\n" + "".join(f"{i},{u},1\n" for i, u in earlier.items()))
    options = IngestOptions(str(first), str(out), min_size=32, progress=False, backoff=0.01)
    assert run_ingest(options).counts["ok"] == 3

    metadata = tmp_path / "train.csv"
    rows = {**earlier, **urls}
    metadata.write_text("id,url,landmark_id\n" + "".join(f"{i},{u},2\n" for i, u in rows.items()))
    command = [sys.executable, "-m", "landmarks.cli", "ingest", "--metadata", str(metadata)]
    command += ["--out", str(out), "--min-size", "32", "--workers", "4", "--no-progress"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    manifest = _manifest(out)
    for image_id, case in cases.items():
        row = manifest[image_id]
        if case.reason:
            assert (row["status"], row["reason"].split(":")[0]) == ("failed", case.reason), row
            assert len(row["reason"]) > len(case.reason) + 2, "the reason says why"
            assert not (out / "images" / "b" / "a" / "d" / f"{image_id}.jpg").exists()
        else:
            assert row["status"] == "ok", row
            stored = Image.open(out / row["path"])
            assert (stored.format, stored.mode) == ("JPEG", "RGB")
            assert stored.size == (int(row["width"]), int(row["height"]))
    # What the first run kept is neither fetched again nor lost.
    for image_id, url in earlier.items():
        assert manifest[image_id]["status"] == "ok"
        assert server.hits(url.removeprefix(server.url(""))) == 1
        assert (out / manifest[image_id]["path"]).read_bytes() == jpeg(int(image_id[3:]))
    summary = json.loads(result.stdout)
    bad = [c for c in cases.values() if c.reason]
    assert summary["status"]["failed"] == len(bad)
    assert summary["status"]["ok"] == 3 + len(cases) - len(bad)
    assert sum(summary["reasons"].values()) == len(bad)
    assert summary["options"]["max_pixels"] == MAX_PIXELS


def test_exif_rotated_jpeg_is_stored_upright(server: FaultServer, tmp_path: Path) -> None:
    # A 48x40 landscape stored sideways (orientation 6: rotate 90 degrees clockwise to view),
    # with a red marker in the stored top-left corner.
    sideways = photo((40, 48))
    sideways.paste(Image.new("RGB", (10, 10), (255, 0, 0)), (0, 0))
    url = server.route("/rot.jpg", Reply.ok(with_orientation(sideways, 6)))
    metadata = tmp_path / "train.csv"
    metadata.write_text(f"id,url,landmark_id\nrot001,{url},1\n")
    out = tmp_path / "out"
    run_ingest(IngestOptions(str(metadata), str(out), min_size=32, progress=False))
    row = _manifest(out)["rot001"]
    stored = Image.open(out / row["path"])
    assert stored.size == (48, 40) == (int(row["width"]), int(row["height"]))
    # Rotated clockwise, the stored top-left corner ends at the top right.
    red, green, blue = stored.getpixel((43, 4))
    assert red > 200 and green < 60 and blue < 60
    assert not stored.getexif().get(0x0112)


def test_max_pixels_option_rejects_larger_images(
    server: FaultServer, jpeg, tmp_path: Path, capsys
) -> None:
    small = server.route("/small.jpg", Reply.ok(jpeg(1, size=40)))
    large = server.route("/large.jpg", Reply.ok(jpeg(2, size=64)))
    metadata = tmp_path / "train.csv"
    metadata.write_text(f"id,url,landmark_id\nsma001,{small},1\nlar001,{large},1\n")
    out = tmp_path / "out"
    args = ["--min-size", "32", "--max-pixels", "2000", "--no-progress"]
    assert main(["ingest", "--metadata", str(metadata), "--out", str(out), *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["options"]["max_pixels"] == 2000
    manifest = _manifest(out)
    assert manifest["sma001"]["status"] == "ok"
    assert manifest["lar001"]["reason"] == "too_large: 64x64 pixels exceeds the limit of 2000"
