"""The local executor of a training step, where the environment cannot train."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from landmarks.errors import InputError
from landmarks.pipeline_steps.training import TrainingStep, run_training_step


def test_the_local_executor_is_refused_where_tensorflow_cannot_be_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A `--mode local` pipeline run by a KFP backend: the step's component image has no
    # TensorFlow. None in sys.modules is how the import system spells "cannot import".
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    out = tmp_path / "model"
    step = TrainingStep(
        stage="stage1", data=str(tmp_path / "splits"), out=str(out), job_name="no-tf"
    )

    with pytest.raises(InputError, match=r"no TensorFlow .*--mode cluster") as caught:
        run_training_step(step)

    assert caught.value.field == "executor"
    assert not out.exists(), "no replica may have started"
