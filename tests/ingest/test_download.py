"""Downloads against a real HTTP server on 127.0.0.1 that injects faults."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from landmarks.artifacts import INGEST_MANIFEST, INGEST_SUMMARY
from landmarks.config import USER_AGENT
from landmarks.ingest import IngestOptions, IngestResult, run_ingest
from landmarks.ingest.sources import parse_retry_after
from tests.support.fault_server import FaultServer, Reply


def _ingest(tmp_path: Path, rows: dict[str, str], **kw) -> tuple[IngestResult, dict[str, dict]]:
    """Ingest `{id: url}`; returns the result and the manifest rows by id."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    metadata = tmp_path / "train.csv"
    lines = ["id,url,landmark_id"] + [f"{i},{u},{n % 3}" for n, (i, u) in enumerate(rows.items())]
    metadata.write_text("\n".join(lines) + "\n")
    options = {"backoff": 0.01, "min_size": 32, "progress": False, "timeout": 5.0, **kw}
    result = run_ingest(IngestOptions(str(metadata), str(tmp_path / "out"), **options))
    with open(result.manifest, newline="") as handle:
        manifest = {r["id"]: r for r in csv.DictReader(handle)}
    return result, manifest


def test_kept_images_land_in_the_abc_layout_with_a_full_manifest(server, jpeg, tmp_path) -> None:
    url = server.route("/a.jpg", Reply.ok(jpeg(1)))
    result, manifest = _ingest(tmp_path, {"0123456789abcdef": url})
    row = manifest["0123456789abcdef"]
    assert row["status"] == "ok" and row["path"] == "images/0/1/2/0123456789abcdef.jpg"
    assert (tmp_path / "out" / row["path"]).read_bytes() == jpeg(1)
    assert (row["width"], row["height"], row["landmark_id"]) == ("40", "40", "0")
    header = (tmp_path / "out" / INGEST_MANIFEST).read_text().splitlines()[0]
    assert header == "id,url,landmark_id,status,reason,duplicate_of,sha256,width,height,path"
    summary = json.loads((tmp_path / "out" / INGEST_SUMMARY).read_text())
    assert summary["status"] == {"ok": 1, "failed": 0, "duplicate": 0}
    assert result.counts == {"rows": 1, "ok": 1, "failed": 0, "duplicate": 0}


def test_404_fails_at_once_without_retrying(server, tmp_path) -> None:
    _, manifest = _ingest(tmp_path, {"missing": server.url("/gone.jpg")})
    assert manifest["missing"]["status"] == "failed"
    assert manifest["missing"]["reason"].startswith("http_404")
    assert server.hits("/gone.jpg") == 1


@pytest.mark.parametrize("status", [403, 410])
def test_other_permanent_statuses_are_not_retried(server, tmp_path, status) -> None:
    url = server.route("/p.jpg", Reply(status))
    _, manifest = _ingest(tmp_path, {"perm01": url})
    assert manifest["perm01"]["reason"].startswith(f"http_{status}")
    assert server.hits("/p.jpg") == 1


def test_500_then_success_is_retried(server, jpeg, tmp_path) -> None:
    url = server.route("/flaky.jpg", Reply(500), Reply(503), Reply.ok(jpeg(2)))
    _, manifest = _ingest(tmp_path, {"flaky1": url})
    assert manifest["flaky1"]["status"] == "ok"
    assert server.hits("/flaky.jpg") == 3


def test_retries_run_out_with_the_attempt_count_in_the_reason(server, tmp_path) -> None:
    url = server.route("/down.jpg", Reply(503))
    result, manifest = _ingest(tmp_path, {"down01": url}, retries=2)
    assert manifest["down01"]["reason"] == "http_503: 503 Service Unavailable (after 3 attempts)"
    assert server.hits("/down.jpg") == 3
    assert result.summary["reasons"] == {"http_503": 1}


def test_retry_honours_retry_after(server, jpeg, tmp_path) -> None:
    url = server.route("/busy.jpg", Reply(429, headers={"Retry-After": "1"}), Reply.ok(jpeg(3)))
    _, manifest = _ingest(tmp_path, {"busy01": url}, backoff=0.01)
    assert manifest["busy01"]["status"] == "ok"
    first, second = server.requests_for("/busy.jpg")
    # Our own backoff is 10 ms; only the server's Retry-After explains a 1 s gap.
    assert second.at - first.at >= 0.95


def test_retry_after_is_capped(server, jpeg, tmp_path) -> None:
    url = server.route(
        "/slowdown.jpg", Reply(503, headers={"Retry-After": "3600"}), Reply.ok(jpeg(4))
    )
    _, manifest = _ingest(tmp_path, {"capped": url}, max_retry_wait=0.05)
    assert manifest["capped"]["status"] == "ok"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_slow_response_past_the_timeout_fails_as_timeout(server, jpeg, tmp_path) -> None:
    url = server.route("/slow.jpg", Reply.ok(jpeg(5), delay=3.0))
    _, manifest = _ingest(tmp_path, {"slow01": url}, timeout=0.3, retries=1)
    assert manifest["slow01"]["reason"].startswith("timeout")
    assert server.hits("/slow.jpg") == 2


def test_a_slow_first_attempt_is_retried(server, jpeg, tmp_path) -> None:
    url = server.route("/once.jpg", Reply.ok(jpeg(6), delay=3.0), Reply.ok(jpeg(6)))
    _, manifest = _ingest(tmp_path, {"once01": url}, timeout=0.3)
    assert manifest["once01"]["status"] == "ok"


def test_truncated_body_is_retried(server, jpeg, tmp_path) -> None:
    url = server.route("/cut.jpg", Reply.ok(jpeg(7), truncate_to=100), Reply.ok(jpeg(7)))
    _, manifest = _ingest(tmp_path, {"cut001": url})
    assert manifest["cut001"]["status"] == "ok"
    assert (tmp_path / "out" / manifest["cut001"]["path"]).read_bytes() == jpeg(7)
    assert server.hits("/cut.jpg") == 2


def test_always_truncated_body_fails_as_truncated(server, jpeg, tmp_path) -> None:
    url = server.route("/cut.jpg", Reply.ok(jpeg(7), truncate_to=100))
    _, manifest = _ingest(tmp_path, {"cut002": url}, retries=1)
    assert manifest["cut002"]["reason"].startswith("truncated_body")
    assert not (tmp_path / "out/images/c/u/t/cut002.jpg").exists()


def test_truncated_image_served_whole_is_rejected_without_retry(server, jpeg, tmp_path) -> None:
    url = server.route("/half.jpg", Reply.ok(jpeg(8)[:600]))
    _, manifest = _ingest(tmp_path, {"half01": url})
    assert manifest["half01"]["reason"].startswith("truncated_image")
    assert server.hits("/half.jpg") == 1


def test_html_instead_of_a_jpeg_is_rejected(server, tmp_path) -> None:
    url = server.route("/login.jpg", Reply.html())
    _, manifest = _ingest(tmp_path, {"html01": url})
    assert manifest["html01"]["reason"] == "not_an_image: an HTML or XML document, not an image"
    assert server.hits("/login.jpg") == 1


def test_redirects_are_followed(server, jpeg, tmp_path) -> None:
    server.route("/final.jpg", Reply.ok(jpeg(9)))
    server.route("/moved.jpg", Reply.redirect("/final.jpg", 301))
    url = server.route("/short", Reply.redirect(server.url("/moved.jpg"), 302))
    _, manifest = _ingest(tmp_path, {"redir1": url})
    assert manifest["redir1"]["status"] == "ok"
    assert [server.hits(p) for p in ("/short", "/moved.jpg", "/final.jpg")] == [1, 1, 1]


def test_redirect_loops_fail(server, tmp_path) -> None:
    url = server.route("/loop", Reply.redirect("/loop"))
    _, manifest = _ingest(tmp_path, {"loop01": url})
    assert manifest["loop01"]["reason"].startswith("too_many_redirects")


def test_user_agent_is_descriptive_and_configurable(server, jpeg, tmp_path) -> None:
    url = server.route("/ua.jpg", Reply.ok(jpeg(10)))
    _ingest(tmp_path / "a", {"uagent": url})
    _ingest(tmp_path / "b", {"uagent": url}, user_agent="my-crawler/1.0 (ops@example.org)")
    agents = [r.headers["User-Agent"] for r in server.requests_for("/ua.jpg")]
    assert agents == [USER_AGENT, "my-crawler/1.0 (ops@example.org)"]


def test_same_content_is_kept_once_for_the_first_row(server, jpeg, tmp_path) -> None:
    rows = {f"dup{n:03d}": server.route(f"/d{n}.jpg", Reply.ok(jpeg(11))) for n in range(6)}
    rows["other1"] = server.route("/o.jpg", Reply.ok(jpeg(12)))
    result, manifest = _ingest(tmp_path, rows, workers=4)
    assert manifest["dup000"]["status"] == "ok"
    for n in range(1, 6):
        assert manifest[f"dup{n:03d}"]["status"] == "duplicate"
        assert manifest[f"dup{n:03d}"]["duplicate_of"] == "dup000"
        assert manifest[f"dup{n:03d}"]["path"] == ""
    kept = sorted(p.name for p in (tmp_path / "out/images").rglob("*.jpg"))
    assert kept == ["dup000.jpg", "other1.jpg"]
    assert result.counts["duplicate"] == 5


def test_a_bad_row_never_stops_the_good_ones(server, jpeg, tmp_path) -> None:
    good = server.route("/good.jpg", Reply.ok(jpeg(13)))
    rows = {"../../etc/evil": good, "good01": good, "ftp001": "ftp://example.org/x.jpg"}
    result, manifest = _ingest(tmp_path, rows)
    assert manifest["good01"]["status"] == "ok"
    assert manifest["../../etc/evil"]["reason"].startswith("invalid_id: row 2, field 'id'")
    assert manifest["ftp001"]["reason"].startswith("invalid_url: row 4, field 'url'")
    assert server.hits("/good.jpg") == 1  # the unsafe id was never fetched
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {
        "train.csv",
        f"out/{INGEST_MANIFEST}",
        f"out/{INGEST_SUMMARY}",
        "out/images/g/o/o/good01.jpg",
    }
    assert result.summary["reasons"] == {"invalid_id": 1, "invalid_url": 1}


def test_labels_file_gives_names_for_the_ingested_landmarks(server, jpeg, tmp_path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "landmark_id,category\n"
        "0,http://commons.wikimedia.org/wiki/Category:Eiffel_Tower\n"
        "1,http://commons.wikimedia.org/wiki/Category:Big_Ben\n"
        "5,http://commons.wikimedia.org/wiki/Category:Not_in_the_data\n"
    )
    url = server.route("/l.jpg", Reply.ok(jpeg(14)))
    result, _ = _ingest(tmp_path, {"label1": url}, labels=str(labels))
    assert result.labels is not None
    assert Path(result.labels).read_text() == "landmark_id,name\n0,Eiffel Tower\n"


def test_server_started_by_the_test_is_really_on_loopback(server: FaultServer) -> None:
    assert server.url("/x").startswith("http://127.0.0.1:")
