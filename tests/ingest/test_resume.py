"""A re-run resumes: nothing done and valid is fetched again, a killed run loses only
the images in flight."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from landmarks.artifacts import INGEST_MANIFEST
from landmarks.ingest import IngestOptions, run_ingest
from tests.support.fault_server import FaultServer, Reply


def _metadata(tmp_path: Path, server: FaultServer, jpeg, count: int) -> Path:
    lines = ["id,url,landmark_id"]
    for n in range(count):
        url = server.route(f"/r{n}.jpg", Reply.ok(jpeg(100 + n)))
        lines.append(f"res{n:04d},{url},{n % 4}")
    path = tmp_path / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(metadata: Path, out: Path, **kw):
    options = {"backoff": 0.01, "min_size": 32, "progress": False, "timeout": 5.0, **kw}
    return run_ingest(IngestOptions(str(metadata), str(out), **options))


def _manifest(out: Path) -> dict[str, dict]:
    with open(out / INGEST_MANIFEST, newline="") as handle:
        return {r["id"]: r for r in csv.DictReader(handle)}


def _image_ids(out: Path) -> set[str]:
    return {p.stem for p in (out / "images").rglob("*.jpg")}


def test_rerun_fetches_nothing_already_done(server, jpeg, tmp_path) -> None:
    metadata = _metadata(tmp_path, server, jpeg, 5)
    out = tmp_path / "out"
    _run(metadata, out)
    first = (out / INGEST_MANIFEST).read_text()
    result = _run(metadata, out)
    assert len(server.requests) == 5
    assert result.summary["this_run"]["processed"] == 0
    assert (out / INGEST_MANIFEST).read_text() == first


def test_rerun_retries_transient_failures_but_not_permanent_ones(server, jpeg, tmp_path) -> None:
    metadata = tmp_path / "train.csv"
    busy = server.route("/busy.jpg", Reply(503))
    gone = server.route("/gone.jpg", Reply(404))
    metadata.write_text(f"id,url,landmark_id\nbusy01,{busy},1\ngone01,{gone},1\n")
    out = tmp_path / "out"
    _run(metadata, out, retries=0)
    assert _manifest(out)["busy01"]["reason"].startswith("http_503")
    server.route("/busy.jpg", Reply.ok(jpeg(1)))
    _run(metadata, out, retries=0)
    assert _manifest(out)["busy01"]["status"] == "ok"
    assert (server.hits("/busy.jpg"), server.hits("/gone.jpg")) == (2, 1)


def test_a_deleted_image_is_fetched_again(server, jpeg, tmp_path) -> None:
    metadata = _metadata(tmp_path, server, jpeg, 3)
    out = tmp_path / "out"
    _run(metadata, out)
    (out / "images/r/e/s/res0001.jpg").unlink()
    _run(metadata, out)
    assert [server.hits(f"/r{n}.jpg") for n in range(3)] == [1, 2, 1]
    assert _image_ids(out) == {"res0000", "res0001", "res0002"}


def test_images_on_disk_without_a_record_are_checked_not_fetched(server, jpeg, tmp_path) -> None:
    metadata = _metadata(tmp_path, server, jpeg, 4)
    out = tmp_path / "out"
    _run(metadata, out)
    (out / INGEST_MANIFEST).unlink()  # as if killed before any record was saved
    (out / "images/r/e/s/res0002.jpg").write_bytes(b"<html>half-written by someone</html>")
    (out / "images/r/e/s/.res0003.jpg.x1y2.part").write_bytes(b"\xff\xd8")
    _run(metadata, out)
    assert [server.hits(f"/r{n}.jpg") for n in range(4)] == [1, 1, 2, 1]
    assert {r["status"] for r in _manifest(out).values()} == {"ok"}
    assert (out / "images/r/e/s/res0002.jpg").read_bytes() == jpeg(102)
    assert sorted(p.name for p in (out / "images/r/e/s").iterdir()) == [
        f"res{n:04d}.jpg" for n in range(4)
    ]


def test_a_changed_url_is_fetched_again(server, jpeg, tmp_path) -> None:
    metadata = _metadata(tmp_path, server, jpeg, 2)
    out = tmp_path / "out"
    _run(metadata, out)
    new = server.route("/new.jpg", Reply.ok(jpeg(7)))
    metadata.write_text(metadata.read_text().replace(server.url("/r1.jpg"), new))
    _run(metadata, out)
    assert server.hits("/new.jpg") == 1
    assert (out / "images/r/e/s/res0001.jpg").read_bytes() == jpeg(7)


def test_killed_run_loses_only_images_in_flight(jpeg, tmp_path) -> None:
    count = 40
    with FaultServer(latency=0.1) as server:
        metadata = _metadata(tmp_path, server, jpeg, count)
        out = tmp_path / "out"
        cmd = [
            sys.executable,
            "-m",
            "landmarks.cli",
            "ingest",
            f"--metadata={metadata}",
            f"--out={out}",
            "--workers=2",
            "--min-size=32",
            "--flush-seconds=0.3",
            "--no-progress",
        ]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            # Wait until some progress is journalled and more images written since.
            while time.monotonic() < deadline and proc.poll() is None:
                journal = list((out / ".ingest").glob("journal-*.csv")) if out.exists() else []
                if journal and len(_image_ids(out)) >= 12:
                    break
                time.sleep(0.02)
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
            if proc.stderr:
                proc.stderr.close()
        survived = _image_ids(out)
        assert 12 <= len(survived) < count
        before = len(server.requests)

        _run(metadata, out, workers=4)

        again = [r.path for r in server.requests[before:]]
        assert sorted(again) == sorted(
            f"/r{n}.jpg" for n in range(count) if f"res{n:04d}" not in survived
        )
    manifest = _manifest(out)
    assert [manifest[f"res{n:04d}"]["status"] for n in range(count)] == ["ok"] * count
    assert _image_ids(out) == {f"res{n:04d}" for n in range(count)}
    assert not list(out.rglob("*.part"))
    assert not list((out / ".ingest").glob("journal-*"))


def test_a_duplicate_whose_kept_twin_is_lost_is_fetched_on_the_next_run(
    server, jpeg, tmp_path
) -> None:
    first = server.route("/first.jpg", Reply.ok(jpeg(5)))
    second = server.route("/second.jpg", Reply.ok(jpeg(5)))
    metadata = tmp_path / "train.csv"
    metadata.write_text(f"id,url,landmark_id\ntwin01,{first},1\ntwin02,{second},1\n")
    out = tmp_path / "out"
    _run(metadata, out)
    assert _manifest(out)["twin02"]["duplicate_of"] == "twin01"

    server.route("/first.jpg", Reply(404))
    (out / "images/t/w/i/twin01.jpg").unlink()
    _run(metadata, out)
    manifest = _manifest(out)
    assert manifest["twin01"]["reason"].startswith("http_404")
    assert manifest["twin02"]["reason"].startswith("duplicate_lost")

    _run(metadata, out)
    assert _manifest(out)["twin02"]["status"] == "ok"
    assert _image_ids(out) == {"twin02"}
    assert (server.hits("/first.jpg"), server.hits("/second.jpg")) == (2, 2)
