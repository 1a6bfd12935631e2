"""The embedded dataset's HTTP server: a real server on 127.0.0.1, real downloads."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from landmarks.synthetic import generate, rewrite_base_url, serve


def _rows(root: Path) -> list[dict[str, str]]:
    with (root / "train.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], b""


def test_serve_answers_concurrent_downloads_and_404s_for_missing_images(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with serve(root) as base_url:  # started before the data exists, as the demo does
        generate(root, classes=3, images_per_class=6, size=32, base_url=base_url)
        rows = _rows(root)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda r: _get(r["url"]), rows))
    missing = 0
    for row, (status, content_type, body) in zip(rows, answers, strict=True):
        local = root / "images" / row["url"][len(base_url) + 1 :]
        if local.exists():
            assert (status, content_type) == (200, "image/jpeg")
            assert body == local.read_bytes()
        else:
            assert status == 404
            missing += 1
    assert missing == 2


def test_server_listens_only_while_the_block_runs(tmp_path: Path) -> None:
    with serve(tmp_path) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert _get(f"{base_url}/nothing.jpg")[0] == 404
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base_url}/nothing.jpg", timeout=5)


def test_rewrite_base_url_points_every_row_at_the_new_server(tmp_path: Path) -> None:
    root = generate(tmp_path / "data", classes=2, images_per_class=3, size=32)
    assert rewrite_base_url(root, "http://127.0.0.1:5555") == 3 * 2 + 4
    rows = _rows(root)
    for row in rows:
        image_id = row["id"]
        expected = f"http://127.0.0.1:5555/{image_id[0]}/{image_id[1]}/{image_id[2]}/{image_id}.jpg"
        assert row["url"] == expected
    assert rewrite_base_url(root, "http://127.0.0.1:5555/") == 0


def _as_background_job() -> None:
    # What a non-interactive shell does for `cmd &` (and so `make test &`): the job starts
    # with SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("started", ["foreground", "background"])
def test_serve_data_command_rewrites_urls_serves_and_stops_on_signal(
    tmp_path: Path, stop: signal.Signals, started: str
) -> None:
    root = generate(tmp_path / "data", classes=2, images_per_class=2, size=32, defects=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "landmarks.cli", "serve-data", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_background_job if started == "background" else None,
    )
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("serving"):
                break
        base_url = lines[-1].split(" at ")[1].split()[0]
        assert lines[0].startswith(f"rewrote 4 URLs in {root / 'train.csv'}")
        row = _rows(root)[0]
        assert row["url"].startswith(base_url + "/")
        status, _, body = _get(row["url"])
        assert status == 200
        assert body == (root / "images" / row["url"][len(base_url) + 1 :]).read_bytes()
        proc.send_signal(stop)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_data_command_needs_a_generated_dataset(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "landmarks.cli", "serve-data", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "run `landmarks make-data` first" in result.stderr
