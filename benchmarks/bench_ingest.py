"""Ingest throughput against a loopback server that adds latency to every request.

Run: `.venv/bin/python -m benchmarks.bench_ingest [--images 3000] [--latency 0.05]`.

The server runs in its own process (so it does not share our interpreter lock) and
serves distinct small JPEGs. Two clients fetch from it in the same run:

- a plain sequential loop (`requests.get` and a file write per image), on a subset,
  since at 50 ms per request the full set would take minutes;
- the project's ingest (`run_ingest`: pool, retries, decode check, hashing, atomic
  writes, journal, manifest), on the full set.

It prints images/second for each, the ratio, and the peak RSS of this process (which ran
both). This is a benchmark, not a test: nothing here passes or fails.

`--metadata-rows N` measures something else, alone in its process: reading and
validating an N-row GLDv2-like `train.csv` (4,132,914 rows for the real one) and
planning the run over it, with the time and peak RSS of each step.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from landmarks.ingest import IngestOptions, run_ingest


def _start_server(images: int, latency: float, size: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.fault_server",
            "--images",
            str(images),
            "--latency",
            str(latency),
            "--size",
            str(size),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"fault server did not start (said {line!r})")
    return proc, int(line.split()[1])


def _sequential(urls: list[str], dest: Path) -> float:
    dest.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for n, url in enumerate(urls):
        resp = requests.get(url, timeout=30)
        resp.raise_for_status()
        (dest / f"{n}.jpg").write_bytes(resp.content)
    return time.perf_counter() - start


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _metadata_scale(rows: int) -> None:
    import secrets

    from landmarks.ingest.manifest import Journal
    from landmarks.ingest.metadata import read_metadata
    from landmarks.ingest.run import _plan

    with tempfile.TemporaryDirectory(prefix="bench-metadata-") as tmp:
        path = Path(tmp, "train.csv")
        with path.open("w") as handle:
            handle.write("id,url,landmark_id\n")
            for n in range(rows):
                handle.write(
                    f"{secrets.token_hex(8)},https://upload.wikimedia.org/wikipedia/commons/"
                    f"{n % 16:x}/{n % 256:02x}/Landmark_photo_{n}.jpg,{n % 203094}\n"
                )
        size_mb = path.stat().st_size / 1e6
        base = _peak_mib()
        start = time.perf_counter()
        metadata = read_metadata(str(path))
        read_s = time.perf_counter() - start
        after_read = _peak_mib()
        start = time.perf_counter()
        _, jobs = _plan(metadata, Journal.load(str(Path(tmp, "out"))), set())
        plan_s = time.perf_counter() - start
    print(f"metadata: {rows} rows, {size_mb:.0f} MB")
    print(f"read + validate: {read_s:.2f} s ({rows / read_s:,.0f} rows/s)")
    print(f"plan ({len(jobs)} jobs): {plan_s:.2f} s")
    print(f"peak RSS: {base:.0f} MiB before, {after_read:.0f} after reading, {_peak_mib():.0f} end")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000, help="images for the ingest run")
    parser.add_argument("--sequential", type=int, default=300, help="images for the plain loop")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per request")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--workers", type=int, default=IngestOptions("", "").workers)
    parser.add_argument(
        "--metadata-rows", type=int, default=0, help="measure metadata validation only"
    )
    args = parser.parse_args(argv)
    if args.metadata_rows:
        _metadata_scale(args.metadata_rows)
        return 0

    proc, port = _start_server(args.images, args.latency, args.size)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            root = Path(tmp)
            urls = [f"http://127.0.0.1:{port}/img/{n}.jpg" for n in range(args.images)]
            metadata = root / "train.csv"
            metadata.write_text(
                "id,url,landmark_id\n"
                + "".join(f"{n:016x},{url},{n % 100}\n" for n, url in enumerate(urls))
            )

            seq_n = min(args.sequential, args.images)
            seq_s = _sequential(urls[:seq_n], root / "sequential")
            seq_rate = seq_n / seq_s

            start = time.perf_counter()
            result = run_ingest(
                IngestOptions(
                    metadata=str(metadata),
                    out=str(root / "ingest"),
                    workers=args.workers,
                    progress=False,
                )
            )
            ingest_s = time.perf_counter() - start
            ok = result.counts["ok"]
            ingest_rate = ok / ingest_s
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    peak_mib = _peak_mib()
    print(f"latency per request: {args.latency * 1000:.0f} ms, image {args.size}x{args.size}")
    print(f"{'client':<28}{'images':>8}{'seconds':>10}{'images/s':>10}")
    print(f"{'sequential requests.get':<28}{seq_n:>8}{seq_s:>10.2f}{seq_rate:>10.1f}")
    label = f"ingest ({args.workers} workers)"
    print(f"{label:<28}{ok:>8}{ingest_s:>10.2f}{ingest_rate:>10.1f}")
    print(f"speed-up: {ingest_rate / seq_rate:.1f}x (target: 20x)")
    print(f"peak RSS of this process: {peak_mib:.0f} MiB")
    print(f"ingest fetch phase: {result.summary['this_run']['images_per_second']} images/s")
    if ok != args.images:
        print(f"warning: only {ok} of {args.images} images were kept: {result.summary['reasons']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
