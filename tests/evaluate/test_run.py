"""The evaluation stage end to end: real JPEGs, real tf_keras models, real outputs."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from landmarks import storage
from landmarks.artifacts import (
    EVALUATION_SUMMARY_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    REPORT_HTML_FILE,
    REPORT_MD_FILE,
    WORST_FILE,
)
from landmarks.evaluate import EvaluateOptions, EvaluationResult, run_evaluate
from landmarks.evaluate.run import choose_best
from landmarks.evaluate.scores import ModelEvaluation
from tests.evaluate.conftest import World

# The good model ranks (confidence high to low): a1 right, d1 wrong (distractor), b1 right,
# b2 wrong, a2 right, c1 right, d2 wrong. M = 5 landmark images.
GAP_WITH_DISTRACTORS = (1 + 2 / 3 + 3 / 5 + 4 / 6) / 5
# Without the distractors: a1, b1 right, b2 wrong, a2, c1 right.
GAP_WITHOUT_DISTRACTORS = (1 + 1 + 3 / 4 + 4 / 5) / 5


@pytest.fixture(scope="module")
def evaluated(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> tuple[EvaluationResult, Path]:
    out = tmp_path_factory.mktemp("evaluate-out")
    result = run_evaluate(
        EvaluateOptions(
            split_dir=str(world.split),
            models={"stage1": str(world.swapped), "stage2": str(world.good)},
            out=str(out),
            batch_size=3,  # several batches, one of them partial
            distractors_dir=str(world.distractors),
        )
    )
    return result, out


def test_scores_of_a_model_whose_predictions_are_known(evaluated) -> None:
    result, _ = evaluated
    good = result.models["stage2"]
    assert good.top1 == pytest.approx(4 / 5)
    assert good.top5 == 1.0  # three classes: top-5 is top-3
    assert good.gap == pytest.approx(GAP_WITH_DISTRACTORS)
    assert (good.n_test, good.n_distractors) == (5, 2)
    assert good.from_logits  # no softmax layer: confidences were softmaxed for GAP
    swapped = result.models["stage1"]
    assert (swapped.top1, swapped.gap) == (0.0, 0.0)
    assert not swapped.from_logits
    assert result.top_k == 3


def test_best_model_has_the_highest_gap(evaluated) -> None:
    result, _ = evaluated
    assert result.best_model == "stage2"


def test_best_model_ties_on_gap_go_to_higher_top1_then_first_listed() -> None:
    def scored(name: str, gap: float, top1: float) -> ModelEvaluation:
        return ModelEvaluation(
            name, "dir", None, 16, 1, 0, top1, 1.0, gap, False, [], [], [], history=[]
        )

    models = {m.name: m for m in (scored("a", 0.5, 0.6), scored("b", 0.5, 0.7))}
    assert choose_best(models) == "b"
    models = {m.name: m for m in (scored("a", 0.5, 0.7), scored("b", 0.5, 0.7))}
    assert choose_best(models) == "a"


def test_summary_json_holds_top1_top5_gap_for_each_model(evaluated) -> None:
    result, out = evaluated
    summary = json.loads((out / EVALUATION_SUMMARY_FILE).read_text())
    assert summary["best_model"] == "stage2"
    assert list(summary["models"]) == ["stage1", "stage2"]
    for name, scores in summary["models"].items():
        assert {"top1", "top5", "gap", "n_test"} <= scores.keys()
        assert scores["gap"] == pytest.approx(result.models[name].gap)
        assert scores["n_test"] == 5
    assert summary["models"]["stage2"]["top1"] == pytest.approx(0.8)
    assert summary["top_k"] == 3
    assert result.summary_uri == str(out / EVALUATION_SUMMARY_FILE)


def test_predictions_csv_lists_truth_prediction_confidence_and_top_k(evaluated) -> None:
    _, out = evaluated
    rows = {r["id"]: r for r in csv.DictReader((out / "stage2" / PREDICTIONS_FILE).open())}
    assert sorted(rows) == ["a1", "a2", "b1", "b2", "c1", "d1", "d2"]
    predicted = {i: r["predicted_landmark_id"] for i, r in rows.items()}
    assert predicted == {
        "a1": "101",
        "a2": "101",
        "b1": "202",
        "b2": "303",
        "c1": "303",
        "d1": "101",
        "d2": "101",  # all logits equal: the lowest class index wins
    }
    assert rows["b2"]["true_landmark_id"] == "202" and rows["b2"]["correct"] == "0"
    assert rows["d1"]["true_landmark_id"] == ""
    assert float(rows["d2"]["confidence"]) == pytest.approx(1 / 3, abs=1e-4)
    top = [pair.split(":") for pair in rows["a1"]["top5"].split()]
    # JPEG leaves green and blue near 0 in no set order; only the first is certain.
    assert top[0][0] == "101" and sorted(lid for lid, _ in top) == ["101", "202", "303"]
    assert sum(float(p) for _, p in top) == pytest.approx(1.0, abs=1e-4)
    assert float(top[0][1]) == pytest.approx(float(rows["a1"]["confidence"]), abs=1e-6)


def test_confusion_matrix_and_per_class_precision_recall(evaluated) -> None:
    result, out = evaluated
    good = result.models["stage2"]
    assert good.confusion_matrix == [[2, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert good.confusion_labels == ["Red Fort (101)", "Green Bridge (202)", "Blue Mosque (303)"]
    per = {row["landmark_id"]: row for row in good.per_class}
    # 101 is also predicted for both distractors: 2 right of 4.
    assert (per["101"]["precision"], per["101"]["recall"]) == (0.5, 1.0)
    assert (per["202"]["precision"], per["202"]["recall"]) == (1.0, 0.5)
    assert (per["303"]["precision"], per["303"]["recall"]) == (0.5, 1.0)
    saved = json.loads((out / "stage2" / METRICS_FILE).read_text())
    assert saved["confusion_matrix"] == good.confusion_matrix
    assert saved["per_class"] == good.per_class


def test_worst_images_are_the_best_models_most_confident_mistakes(evaluated) -> None:
    result, out = evaluated
    assert [w["id"] for w in result.worst] == ["d1", "b2", "d2"]
    assert result.worst[0]["true"] == "no landmark"
    assert result.worst[1]["true"] == "Green Bridge (202)"
    assert result.worst[1]["predicted"] == "Blue Mosque (303)"
    with Image.open(out / WORST_FILE) as grid:
        assert grid.width > 300 and grid.height > 200


def _data_uri_images(html: str) -> list[Image.Image]:
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    images = []
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:60]
        images.append(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
    return images


def test_html_report_is_self_contained_and_names_the_best_model(evaluated) -> None:
    _, out = evaluated
    html = (out / REPORT_HTML_FILE).read_text()
    assert '<strong id="best-model">stage2</strong>' in html
    images = _data_uri_images(html)
    # curves and confusion matrix for each model, and the worst-images grid
    assert len(images) == 5
    assert all(img.format == "PNG" and img.width >= 400 for img in images)
    for text in ("0.5867", "0.8000", "top-3", "Red Fort (101)", "no landmark", "d1.jpg"):
        assert text in html


def test_markdown_report_links_pictures_written_beside_it(evaluated) -> None:
    _, out = evaluated
    md = (out / REPORT_MD_FILE).read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == sorted(
        [
            WORST_FILE,
            "stage1/curves.png",
            "stage1/confusion.png",
            "stage2/curves.png",
            "stage2/confusion.png",
        ]
    )
    for link in links:
        with Image.open(out / link) as img:
            assert img.format == "PNG"
    assert "**Best model: stage2**" in md
    assert "| stage2 ★ | colour | 7 | 0.8000 | 1.0000 | 0.5867 |" in md


def test_kfp_outputs_give_scalars_per_model_and_best_confusion(evaluated) -> None:
    result, _ = evaluated
    scalars, labels, matrix = result.kfp_outputs()
    assert scalars["stage2"] == {
        "top1": pytest.approx(0.8),
        "top5": 1.0,
        "gap": pytest.approx(GAP_WITH_DISTRACTORS),
        "n_test": 5.0,
    }
    assert set(scalars) == {"stage1", "stage2"}
    assert labels == ["Red Fort (101)", "Green Bridge (202)", "Blue Mosque (303)"]
    assert matrix == [[2, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_split_model_and_output_on_gcs(world: World, gcs_bucket: str) -> None:
    split = f"{gcs_bucket}/splits/s1"
    model = f"{gcs_bucket}/models/good"
    out = f"{gcs_bucket}/eval/run1"
    storage.upload_tree(world.split, split)
    storage.upload_tree(world.good, model)
    result = run_evaluate(EvaluateOptions(split_dir=split, models={"good": model}, out=out))
    assert result.models["good"].gap == pytest.approx(GAP_WITHOUT_DISTRACTORS)
    summary = json.loads(storage.read_text(f"{out}/{EVALUATION_SUMMARY_FILE}"))
    assert summary["best_model"] == "good"
    assert summary["models"]["good"]["top1"] == pytest.approx(0.8)
    written = set(storage.list_files(out))
    assert {REPORT_HTML_FILE, REPORT_MD_FILE, WORST_FILE, f"good/{PREDICTIONS_FILE}"} <= written
    assert f"{split}/test/202/b2.jpg" in storage.read_text(f"{out}/good/{PREDICTIONS_FILE}")


def test_png_test_images_are_predicted_like_jpegs(world: World, tmp_path: Path) -> None:
    split = tmp_path / "split"
    shutil.copytree(world.split, split)
    jpeg = split / "test" / "202" / "b2.jpg"
    with Image.open(jpeg) as img:
        img.save(jpeg.with_suffix(".png"))
    jpeg.unlink()
    out = tmp_path / "out"
    result = run_evaluate(EvaluateOptions(str(split), {"good": str(world.good)}, str(out)))
    assert result.models["good"].gap == pytest.approx(GAP_WITHOUT_DISTRACTORS)
    assert "test/202/b2.png" in (out / "good" / PREDICTIONS_FILE).read_text()
