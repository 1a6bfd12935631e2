"""Bad input stops with an error that names the file (and row and field where there is one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from landmarks.artifacts import (
    CONFIG_FILE,
    EVALUATION_SUMMARY_FILE,
    LABEL_MAP,
    METRICS_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    SPLIT_MANIFEST,
)
from landmarks.cli import main
from landmarks.errors import InputError
from landmarks.evaluate import EvaluateOptions, run_evaluate
from landmarks.evaluate.cli import parse_models
from landmarks.split import read_label_map
from tests.evaluate.builders import LABELS, make_colour_model, write_image, write_label_map
from tests.evaluate.conftest import World


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _evaluate(split: Path, models: dict[str, Path], out: Path) -> None:
    run_evaluate(
        EvaluateOptions(
            split_dir=str(split), models={k: str(v) for k, v in models.items()}, out=str(out)
        )
    )


def test_model_trained_on_other_classes_is_refused(world: World, tmp_path: Path) -> None:
    swapped_ids = [LABELS[1], LABELS[0], LABELS[2]]
    model = _copy(world.good, tmp_path / "model")
    write_label_map(model / LABEL_MAP, [(i, lid, n) for i, (_, lid, n) in enumerate(swapped_ids)])
    with pytest.raises(InputError) as info:
        _evaluate(world.split, {"m": model}, tmp_path / "out")
    assert info.value.file == str(model / LABEL_MAP)
    assert (info.value.row, info.value.field) == (2, "landmark_id")
    assert "class_index 0 is landmark 202 here but 101" in str(info.value)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_model_with_fewer_classes_than_the_split_is_refused(world: World, tmp_path: Path) -> None:
    model = _copy(world.good, tmp_path / "model")
    write_label_map(model / LABEL_MAP, LABELS[:2])
    with pytest.raises(InputError, match="2 classes here but 3 in"):
        _evaluate(world.split, {"m": model}, tmp_path / "out")


def test_missing_model_file_is_named(world: World, tmp_path: Path) -> None:
    model = _copy(world.good, tmp_path / "model")
    (model / MODEL_FILE).unlink()
    with pytest.raises(InputError, match="model file not found") as info:
        _evaluate(world.split, {"good": world.good, "m": model}, tmp_path / "out")
    assert info.value.file == str(model / MODEL_FILE)
    assert not (tmp_path / "out").exists()  # checked before the first model ran


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_is_named(world: World, tmp_path: Path, damage: str) -> None:
    split = _copy(world.split, tmp_path / "split")
    bad = split / "test" / "202" / "b3.jpg"
    good_bytes = (split / "test" / "202" / "b1.jpg").read_bytes()
    bad.write_bytes(b"not an image at all" if damage == "garbage" else good_bytes[:200])
    with pytest.raises(InputError, match="cannot read image") as info:
        _evaluate(split, {"good": world.good}, tmp_path / "out")
    assert info.value.file == str(bad)


def test_unloadable_later_model_keeps_earlier_models_outputs(world: World, tmp_path: Path) -> None:
    broken = _copy(world.good, tmp_path / "broken")
    (broken / MODEL_FILE).write_bytes(b"not a zip archive")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="cannot load the model") as info:
        _evaluate(world.split, {"good": world.good, "broken": broken}, out)
    assert info.value.file == str(broken / MODEL_FILE)
    assert (out / "good" / PREDICTIONS_FILE).read_text().count("\n") == 6  # header + 5
    assert (out / "good" / METRICS_FILE).exists()
    assert not (out / EVALUATION_SUMMARY_FILE).exists()  # the run as a whole did not finish


def test_test_image_of_unknown_landmark_is_named(world: World, tmp_path: Path) -> None:
    split = _copy(world.split, tmp_path / "split")
    stray = split / "test" / "999" / "x1.jpg"
    write_image(stray, (10, 20, 30))
    with pytest.raises(InputError, match="landmark 999 is not in") as info:
        _evaluate(split, {"good": world.good}, tmp_path / "out")
    assert info.value.file == str(stray)


def test_config_image_size_that_disagrees_with_the_model_is_named(
    world: World, tmp_path: Path
) -> None:
    model = make_colour_model(tmp_path / "model", config={"image_size": 32, "model": "colour"})
    with pytest.raises(InputError, match="takes 16x16") as info:
        _evaluate(world.split, {"m": model}, tmp_path / "out")
    assert (info.value.file, info.value.field) == (str(model / CONFIG_FILE), "image_size")


def test_label_map_with_gap_in_class_index_names_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / LABEL_MAP
    path.write_text("class_index,landmark_id,name\n0,101,a\n2,202,b\n")
    with pytest.raises(InputError) as info:
        read_label_map(str(tmp_path))
    assert (info.value.file, info.value.row, info.value.field) == (str(path), 3, "class_index")
    assert "expected class_index 1" in str(info.value)


def test_label_map_without_required_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / LABEL_MAP
    path.write_text("class_index,name\n0,a\n")
    with pytest.raises(InputError, match="missing landmark_id"):
        read_label_map(str(tmp_path))


def test_model_label_map_with_an_extra_column_is_refused(world: World, tmp_path: Path) -> None:
    # Evaluation used to accept extra columns; the shared parser wants the split's header.
    model = _copy(world.good, tmp_path / "model")
    text = (model / LABEL_MAP).read_text().splitlines()
    rows = [f"{line},x" for line in text]
    (model / LABEL_MAP).write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match="header must be exactly") as info:
        _evaluate(world.split, {"m": model}, tmp_path / "out")
    assert (info.value.file, info.value.row) == (str(model / LABEL_MAP), 1)
    assert not (tmp_path / "out").exists()


def test_model_name_that_cannot_be_a_folder_is_refused(world: World, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"model name '\.\./x'"):
        _evaluate(world.split, {"../x": world.good}, tmp_path / "out")


def test_cli_reports_bad_input_without_traceback(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    code = main(
        ["evaluate", "--split", str(world.split), "--model", f"x={missing}", "--out", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing / MODEL_FILE) in err
    assert "Traceback" not in err


def test_cli_model_specs_keep_order_and_default_to_folder_name() -> None:
    assert parse_models(["b=gs://x/m1", "/models/stage2/"]) == {
        "b": "gs://x/m1",
        "stage2": "/models/stage2/",
    }
    with pytest.raises(InputError, match="given twice"):
        parse_models(["a=/m1", "a=/m2"])


def test_split_without_manifest_is_refused_as_unfinished(world: World, tmp_path: Path) -> None:
    split = _copy(world.split, tmp_path / "split")
    (split / SPLIT_MANIFEST).unlink()
    with pytest.raises(InputError, match="not a complete split") as info:
        _evaluate(split, {"good": world.good}, tmp_path / "out")
    assert info.value.file == str(split / SPLIT_MANIFEST)
