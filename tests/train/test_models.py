"""Loading a saved model from a local or gs:// model directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

import landmarks.train
from landmarks import storage
from landmarks.artifacts import MODEL_FILE
from landmarks.errors import InputError


def _leftover_copies() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("landmarks-*.keras")}


def test_load_model_reads_a_gs_model_dir_and_removes_its_local_copy(
    gcs_bucket: str, tmp_path: Path
) -> None:
    import tf_keras as keras

    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs)).save(
        str(tmp_path / MODEL_FILE)
    )
    model_dir = storage.join(gcs_bucket, "model")
    storage.upload_tree(tmp_path, model_dir)
    before = _leftover_copies()

    model = landmarks.train.load_model(model_dir)

    assert model.output_shape == (None, 3)
    assert _leftover_copies() == before


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_load_model_without_a_model_names_the_missing_file(
    where: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model_dir = request.getfixturevalue("gcs_bucket") if where == "gcs" else str(tmp_path)

    with pytest.raises(InputError, match="no trained model here") as raised:
        landmarks.train.load_model(model_dir)

    assert raised.value.file == storage.join(model_dir, MODEL_FILE)
