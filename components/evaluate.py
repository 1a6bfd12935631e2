"""Evaluate component: every trained model on the test split, with a report for the UI."""
# No `from __future__ import annotations`: KFP reads the real annotation objects.

from kfp.dsl import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
)

from components.base import landmarks_component


@landmarks_component
def evaluate(
    splits: Input[Dataset],
    stage1: Input[Model],
    stage2_vgg16: Input[Model],
    stage2_resnet50: Input[Model],
    stage3: Input[Model],
    scores: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    report: Output[HTML],
    report_markdown: Output[Markdown],
    evaluation: Output[Artifact],
    batch_size: int = 64,
) -> str:
    """Top-1, top-5 and GAP per model, the best model's confusion matrix, and a report.

    Args:
        splits: The split output (its test/ folder is evaluated).
        stage1: LeNet-5 smoke model.
        stage2_vgg16: VGG16 transfer model.
        stage2_resnet50: ResNet50 transfer model.
        stage3: ResNet50 trained with augmentation.
        scores: `<model>.top1`, `<model>.top5`, `<model>.gap` for every model.
        confusion: The best model's confusion matrix.
        report: Self-contained HTML report (curves, confusion matrices, worst images).
        report_markdown: The same report as Markdown.
        evaluation: Folder with summary.json, predictions and pictures.
        batch_size: Images per prediction batch.

    Returns:
        The name of the best model (by GAP, then top-1).
    """
    from landmarks import storage
    from landmarks.evaluate import EvaluateOptions, run_evaluate
    from landmarks.evaluate.report import inline_figures

    result = run_evaluate(
        EvaluateOptions(
            split_dir=splits.path,
            models={
                "stage1-lenet5": stage1.path,
                "stage2-vgg16": stage2_vgg16.path,
                "stage2-resnet50": stage2_resnet50.path,
                "stage3-resnet50-aug": stage3.path,
            },
            out=evaluation.path,
            batch_size=batch_size,
        )
    )
    per_model, labels, rows = result.kfp_outputs()
    for name, values in per_model.items():
        for key, value in values.items():
            scores.log_metric(f"{name}.{key}", value)
    confusion.log_confusion_matrix(labels, rows)
    storage.copy(result.report_html_uri, report.path)
    # The UI shows this copy at its own URI: the figures travel inside it.
    markdown = inline_figures(storage.read_text(result.report_md_uri), evaluation.path)
    storage.write_text(report_markdown.path, markdown, "text/markdown")
    return result.best_model
