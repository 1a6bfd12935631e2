"""`landmarks ingest` stops on SIGINT and SIGTERM with its progress saved, even when it was
started as a background job (SIGINT inherited as ignored) or with a journal flush far off."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from landmarks.ingest import IngestOptions, run_ingest
from tests.support.fault_server import FaultServer, Reply

COUNT = 40
WORKERS = 2


def _as_background_job() -> None:
    # What a non-interactive shell does for `cmd &`: the job starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _journalled(out: Path) -> dict[str, str]:
    records = {}
    for segment in sorted((out / ".ingest").glob("journal-*.csv")):
        with segment.open(newline="") as handle:
            records.update({r["id"]: r["status"] for r in csv.DictReader(handle)})
    return records


@pytest.mark.parametrize(
    ("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_stop_signal_saves_progress_and_exits_with_its_code(jpeg, tmp_path, stop, code) -> None:
    with FaultServer(latency=0.1) as server:
        lines = ["id,url,landmark_id"]
        for n in range(COUNT):
            lines.append(f"sig{n:04d},{server.route(f'/s{n}.jpg', Reply.ok(jpeg(300 + n)))},1")
        metadata = tmp_path / "train.csv"
        metadata.write_text("\n".join(lines) + "\n")
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "landmarks.cli", "ingest", f"--metadata={metadata}"]
        # No periodic flush: what the journal holds afterwards was saved by the stop.
        cmd += [f"--out={out}", f"--workers={WORKERS}", "--min-size=32", "--flush-seconds=600"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        proc = subprocess.Popen(
            [*cmd, "--no-progress"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_as_background_job,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if len(list(out.glob("images/*/*/*/*.jpg"))) >= 8:
                    break
                time.sleep(0.02)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            sent = time.monotonic()
            proc.send_signal(stop)
            assert proc.wait(timeout=15) == code
            assert time.monotonic() - sent < 5
            stderr = proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
        assert f"stopped by {stop.name}: rerun the same command to resume" in stderr
        saved = _journalled(out)
        assert len(saved) >= 8 - WORKERS and set(saved.values()) == {"ok"}
        before = len(server.requests)
        on_disk = len(list(out.glob("images/*/*/*/*.jpg")))

        result = run_ingest(
            IngestOptions(str(metadata), str(out), min_size=32, progress=False, workers=4)
        )
        # Saved rows are not fetched again; images that reached the disk without a record
        # (in flight, or done but not yet journalled, at the stop) are checked, not fetched.
        assert result.summary["this_run"]["reused"] == len(saved)
        assert result.summary["this_run"]["checked_on_disk"] == on_disk - len(saved)
        assert len(server.requests) - before == result.summary["this_run"]["fetched"]
    assert result.counts["ok"] == COUNT
