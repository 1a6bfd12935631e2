"""The evaluation stage: predict the test split with every trained model and report.

Outputs under `out` (local, gs://, s3:// or minio://):

- `summary.json`: the best model and, per model, top1, top5, gap, n_test. Written last, so
  its presence means the evaluation finished.
- `report.html` (self-contained, pictures embedded) and `report.md` (links the PNGs).
- `worst.png`: the best model's most confident mistakes.
- per model, `<name>/`: `predictions.csv`, `metrics.json` (per-class precision and recall,
  confusion matrix), `curves.png`, `confusion.png`. Each model's files are written as soon
  as it is done, so a failure in a later model loses nothing of an earlier one.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landmarks import storage
from landmarks.artifacts import METRICS_FILE, PREDICTIONS_FILE
from landmarks.errors import InputError
from landmarks.evaluate import metrics, predict, report
from landmarks.evaluate.scores import (
    REPORT_HTML_FILE,
    REPORT_MD_FILE,
    SUMMARY_FILE,
    WORST_FILE,
    EvaluationResult,
    ModelEvaluation,
)
from landmarks.split.label_map import LabelMap, read_label_map
from landmarks.train import CONFIG_FILE, MODEL_FILE

log = logging.getLogger(__name__)

# The confusion matrix handed to KFP and metrics.json covers at most this many classes
# (the most confused ones beyond it): a 10,000-square matrix helps nobody.
CONFUSION_RESULT_MAX = 100
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class EvaluateOptions:
    """What to evaluate and where to write the results.

    Attributes:
        split_dir: the split (local, gs://, s3:// or minio://) with
            `test/<landmark_id>/<id>.jpg` and `label_map.csv`.
        models: display name -> model dir (local, gs://, s3:// or minio://), in report order.
            Names become folder names under `out`: letters, digits, `.`, `_`, `-`.
        out: output folder (local, gs://, s3:// or minio://).
        batch_size: images per prediction batch.
        worst_k: how many of the best model's most confident mistakes to show.
        distractors_dir: optional folder of images that show no landmark; they enter GAP
            and precision as images where every prediction is wrong.
        top_k: k of the top-k accuracy, capped at the number of classes.
    """

    split_dir: str
    models: dict[str, str]
    out: str
    batch_size: int = 64
    worst_k: int = 16
    distractors_dir: str | None = None
    top_k: int = 5


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _check_options(opts: EvaluateOptions) -> None:
    if not opts.models:
        raise InputError("no model to evaluate", field="models")
    for name in opts.models:
        if not _NAME.match(name):
            raise InputError(
                f"model name {name!r} must be letters, digits, '.', '_' or '-' "
                "(it names a folder under the output)",
                field="models",
            )
    for attr, low in (("batch_size", 1), ("worst_k", 0), ("top_k", 1)):
        if getattr(opts, attr) < low:
            raise InputError(f"must be at least {low}", field=attr)


@dataclass
class _Prepared:
    name: str
    model_dir: str
    config: dict[str, Any]
    history: list[dict[str, Any]]


def _preflight(opts: EvaluateOptions, split_map: LabelMap) -> list[_Prepared]:
    """Check every model dir before predicting anything: fail in seconds, not after hours."""
    prepared = []
    for name, model_dir in opts.models.items():
        model_uri = storage.join(model_dir, MODEL_FILE)
        if not storage.exists(model_uri):
            raise InputError(f"model file not found for model {name!r}", file=model_uri)
        model_map = read_label_map(model_dir)
        predict.check_same_classes(model_map, split_map)
        config_uri = storage.join(model_dir, CONFIG_FILE)
        config = predict.read_json(config_uri, required=False) or {}
        if not isinstance(config, dict):
            raise InputError("expected a JSON object", file=config_uri)
        predict.configured_image_size(config, config_uri)
        prepared.append(_Prepared(name, model_dir, config, predict.read_history(model_dir)))
    return prepared


def _score(
    prep: _Prepared,
    images: list[predict.TestImage],
    preds: predict.Predictions,
    label_map: LabelMap,
    image_size: int,
) -> tuple[ModelEvaluation, np.ndarray]:
    """Scores of one model, and its full confusion matrix (for the picture)."""
    n_classes = len(label_map)
    true = np.array([im.class_index for im in images], dtype=np.int64)
    top1 = preds.top1.astype(np.int64)
    cm = metrics.confusion_matrix(true, top1, n_classes)
    per = metrics.precision_recall(true, top1, n_classes)
    per_class = [
        {
            "class_index": i,
            "landmark_id": label_map.landmark_ids[i],
            "name": label_map.names[i],
            "label": predict.display(label_map, i),
            "precision": _finite(per.precision[i]),
            "recall": _finite(per.recall[i]),
            "support": int(per.support[i]),
            "predicted": int(per.predicted[i]),
        }
        for i in range(n_classes)
    ]
    keep = np.arange(n_classes)
    if n_classes > CONFUSION_RESULT_MAX:
        keep = report.focus_classes(cm, CONFUSION_RESULT_MAX)
    n_distractors = int(np.count_nonzero(true == metrics.NO_LABEL))
    evaluation = ModelEvaluation(
        name=prep.name,
        model_dir=prep.model_dir,
        architecture=prep.config.get("model"),
        image_size=image_size,
        n_test=len(images) - n_distractors,
        n_distractors=n_distractors,
        top1=metrics.top_k_accuracy(true, preds.topk, 1),
        top5=metrics.top_k_accuracy(true, preds.topk),
        gap=metrics.global_average_precision(true, top1, preds.confidence),
        from_logits=preds.from_logits,
        per_class=per_class,
        confusion_labels=[predict.display(label_map, i) for i in keep],
        confusion_matrix=cm[np.ix_(keep, keep)].tolist(),
        history=prep.history,
    )
    return evaluation, cm


def _worst(
    images: list[predict.TestImage],
    preds: predict.Predictions,
    label_map: LabelMap,
    k: int,
) -> list[report.WorstItem]:
    true = np.array([im.class_index for im in images])
    wrong = np.flatnonzero(preds.top1 != true)
    wrong = wrong[np.argsort(-preds.confidence[wrong], kind="stable")][:k]
    return [
        report.WorstItem(
            local_path=images[i].local_path,
            source=images[i].source,
            image_id=images[i].image_id,
            truth=predict.display(label_map, true[i]) if true[i] >= 0 else "no landmark",
            predicted=predict.display(label_map, int(preds.top1[i])),
            confidence=float(preds.confidence[i]),
        )
        for i in wrong
    ]


def choose_best(models: dict[str, ModelEvaluation]) -> str:
    """The model with the highest GAP, then the highest top-1; then the one listed first."""
    # max() keeps the first of equals.
    return max(models, key=lambda n: (models[n].gap, models[n].top1))


def _evaluate_model(
    prep: _Prepared,
    images: list[predict.TestImage],
    split_map: LabelMap,
    opts: EvaluateOptions,
    workdir: Path,
) -> tuple[ModelEvaluation, predict.Predictions, dict[str, bytes]]:
    """Predict with one model, score it and write its files under `out/<name>/` at once."""
    model = predict.load_model(prep.model_dir)
    model_uri = storage.join(prep.model_dir, MODEL_FILE)
    n_out = model.output_shape[-1]
    if n_out != len(split_map):
        raise InputError(
            f"the model has {n_out} outputs but label_map.csv has {len(split_map)} classes",
            file=model_uri,
        )
    config_uri = storage.join(prep.model_dir, CONFIG_FILE)
    size = predict.model_image_size(
        model, predict.configured_image_size(prep.config, config_uri), model_uri, config_uri
    )
    preds = predict.predict(
        model, images, size, batch_size=opts.batch_size, k=opts.top_k, desc=prep.name
    )
    del model  # a ResNet50 is 100 MB; the next one need not share memory with it
    ev, full_cm = _score(prep, images, preds, split_map, size)
    folder = storage.join(opts.out, prep.name)
    ev.predictions_uri = storage.join(folder, PREDICTIONS_FILE)
    storage.write_text(
        ev.predictions_uri, predict.predictions_csv(images, preds, split_map), "text/csv"
    )
    details = {
        **ev.summary(),
        "image_size": size,
        "from_logits": ev.from_logits,
        "per_class": ev.per_class,
        "confusion_labels": ev.confusion_labels,
        "confusion_matrix": ev.confusion_matrix,
    }
    storage.write_text(
        storage.join(folder, METRICS_FILE), json.dumps(details, indent=2), "application/json"
    )
    figures = {
        "curves": report.training_curves_png(prep.history, f"{prep.name} training"),
        "confusion": report.confusion_png(
            full_cm,
            [predict.display(split_map, i) for i in range(len(split_map))],
            f"{prep.name}: confusion matrix (top-1)",
        ),
    }
    pngs = {}
    for key, png in figures.items():
        if png is not None:
            storage.write_bytes(storage.join(folder, f"{key}.png"), png, "image/png")
            pngs[f"{prep.name}/{key}"] = png
    log.info(
        "%s: top1 %.4f, top%d %.4f, GAP %.4f on %d images",
        prep.name,
        ev.top1,
        min(opts.top_k, len(split_map)),
        ev.top5,
        ev.gap,
        ev.n_images,
    )
    return ev, preds, pngs


def run_evaluate(opts: EvaluateOptions) -> EvaluationResult:
    """Evaluate every model in `opts.models` on the test split and write the report."""
    _check_options(opts)
    split_map = read_label_map(opts.split_dir)
    prepared = _preflight(opts, split_map)
    out = opts.out
    with tempfile.TemporaryDirectory(prefix="landmarks-evaluate-") as tmp:
        workdir = Path(tmp)
        images = predict.list_test_images(opts.split_dir, split_map, workdir)
        if opts.distractors_dir:
            images += predict.list_distractors(opts.distractors_dir, workdir)
        n_distractors = sum(im.class_index < 0 for im in images)
        log.info(
            "%d test images (%d distractors), %d classes, %d models",
            len(images),
            n_distractors,
            len(split_map),
            len(prepared),
        )
        results: dict[str, ModelEvaluation] = {}
        all_preds: dict[str, predict.Predictions] = {}
        pngs: dict[str, bytes] = {}
        for prep in prepared:
            ev, preds, figures = _evaluate_model(prep, images, split_map, opts, workdir)
            results[prep.name] = ev
            all_preds[prep.name] = preds
            pngs.update(figures)

        best = choose_best(results)
        result = EvaluationResult(
            split_dir=opts.split_dir,
            out=out,
            n_classes=len(split_map),
            n_test=len(images) - n_distractors,
            n_distractors=n_distractors,
            top_k=min(opts.top_k, len(split_map)),
            models=results,
            best_model=best,
        )
        worst = _worst(images, all_preds[best], split_map, opts.worst_k)
        result.worst = [
            {
                "id": w.image_id,
                "path": w.source,
                "true": w.truth,
                "predicted": w.predicted,
                "confidence": w.confidence,
            }
            for w in worst
        ]
        grid = report.worst_grid_png(worst, f"{best}: most confident mistakes")
        if grid:
            pngs["worst"] = grid
            storage.write_bytes(storage.join(out, WORST_FILE), grid, "image/png")

    figures = {key: f"{key}.png" for key in pngs}
    result.report_md_uri = storage.join(out, REPORT_MD_FILE)
    storage.write_text(
        result.report_md_uri, report.render_markdown(result, figures), "text/markdown"
    )
    result.report_html_uri = storage.join(out, REPORT_HTML_FILE)
    storage.write_text(result.report_html_uri, report.render_html(result, pngs), "text/html")
    result.summary_uri = storage.join(out, SUMMARY_FILE)
    storage.write_text(
        result.summary_uri, json.dumps(result.summary(), indent=2) + "\n", "application/json"
    )
    log.info("best model: %s; report %s", best, result.report_html_uri)
    return result
