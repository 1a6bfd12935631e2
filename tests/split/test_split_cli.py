"""`landmarks split` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from landmarks.cli import main
from tests.split.ingest_dir import make_ingest


def test_split_command_prints_counts_per_class_and_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest = make_ingest(tmp_path / "ingest", {42: 10, 7: 5, 3: 1}, labels={42: "Colosseum"})
    out = tmp_path / "split"
    argv = ["split", "--ingest-dir", ingest, "--out", str(out), "--ratios", "0.6,0.2,0.2"]
    assert main([*argv, "--min-images", "3", "--seed", "1"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["class", "landmark_id", "train", "validation", "test", "name"]
    assert lines[1].split() == ["0", "7", "3", "1", "1"]
    assert lines[2].split() == ["1", "42", "6", "2", "2", "Colosseum"]
    assert lines[3].split() == ["total", "9", "3", "3"]
    assert (out / "train/42").is_dir()


def test_split_command_reports_bad_options_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest = make_ingest(tmp_path / "ingest", {1: 5, 2: 5})
    argv = ["split", "--ingest-dir", ingest, "--out", str(tmp_path / "s")]
    assert main([*argv, "--ratios", "0.5,0.3,0.3"]) == 2
    assert "error: ratios must sum to 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--ratios", "0.8,0.2"])
    assert "expected three numbers" in capsys.readouterr().err
