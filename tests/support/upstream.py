"""Files of pinned upstream releases, read from the Go module cache (nothing is vendored).

from tests.support.upstream import tfjob_crd_path
crd = tfjob_crd_path()  # skips the calling test with the reason when it is unavailable
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test-cluster" / "upstream.sh"


def tfjob_crd_path() -> Path:
    """The TFJob CRD (kubeflow.org_tfjobs.yaml) of the pinned training-operator release.

    The same file the test cluster applies. Skips the test when Go or the module proxy is
    unavailable.
    """
    out = subprocess.run(
        [str(SCRIPT), "crd-path"], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode != 0:
        pytest.skip(f"TFJob CRD unavailable: {out.stderr.strip()}")
    return Path(out.stdout.strip())
