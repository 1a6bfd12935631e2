"""`landmarks ingest` prints the summary; bad input exits 2 with a located message."""

from __future__ import annotations

import json

from landmarks.cli import main
from tests.support.fault_server import Reply


def test_ingest_command_prints_the_summary(server, jpeg, tmp_path, capsys) -> None:
    url = server.route("/c.jpg", Reply.ok(jpeg(1)))
    metadata = tmp_path / "train.csv"
    metadata.write_text(f"id,url,landmark_id\ncli001,{url},3\n")
    out = tmp_path / "out"
    args = ["--min-size", "32", "--workers", "2", "--no-progress"]
    code = main(["ingest", "--metadata", str(metadata), "--out", str(out), *args])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == {"ok": 1, "failed": 0, "duplicate": 0}
    assert (tmp_path / "out/images/c/l/i/cli001.jpg").exists()


def test_bad_metadata_exits_2_naming_file_row_and_field(tmp_path, capsys) -> None:
    metadata = tmp_path / "train.csv"
    metadata.write_text("id,url,label\nabc,https://x.org/a.jpg,3\n")
    code = main(["ingest", "--metadata", str(metadata), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{metadata}, row 1, field 'landmark_id': missing column(s) landmark_id" in err
    assert not (tmp_path / "out").exists()
