"""What an evaluation produced: the scores of each model and of the whole run.

Its own module because both the evaluation (`run`, which fills these in) and the report
(`report`, which renders them) need the types; neither has to import the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The files an evaluation writes under its output folder (named in landmarks.artifacts); the
# pipeline's local runner reads the report and the summary by these names.
from landmarks.artifacts import EVALUATION_SUMMARY_FILE as SUMMARY_FILE
from landmarks.artifacts import REPORT_HTML_FILE, REPORT_MD_FILE, WORST_FILE

__all__ = [
    "REPORT_HTML_FILE",
    "REPORT_MD_FILE",
    "SUMMARY_FILE",
    "WORST_FILE",
    "EvaluationResult",
    "ModelEvaluation",
]


@dataclass
class ModelEvaluation:
    """Scores of one trained model on the test split."""

    name: str
    model_dir: str
    architecture: str | None
    image_size: int
    n_test: int  # landmark images
    n_distractors: int
    top1: float
    top5: float  # top-k with k = min(5, classes)
    gap: float
    from_logits: bool
    per_class: list[dict[str, Any]]
    confusion_labels: list[str]
    confusion_matrix: list[list[int]]
    history: list[dict[str, Any]] = field(repr=False)
    predictions_uri: str = ""

    @property
    def n_images(self) -> int:
        return self.n_test + self.n_distractors

    def summary(self) -> dict[str, Any]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "gap": self.gap,
            "n_test": self.n_test,
            "n_distractors": self.n_distractors,
            "architecture": self.architecture,
            "model_dir": self.model_dir,
        }


@dataclass
class EvaluationResult:
    """Everything the evaluation produced, and where it wrote it."""

    split_dir: str
    out: str
    n_classes: int
    n_test: int
    n_distractors: int
    top_k: int
    models: dict[str, ModelEvaluation]
    best_model: str
    # The best model's most confident mistakes, as shown in worst.png.
    worst: list[dict[str, Any]] = field(default_factory=list)
    summary_uri: str = ""
    report_html_uri: str = ""
    report_md_uri: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "best_model": self.best_model,
            "selected_by": "gap, then top1",
            "top_k": self.top_k,
            "split_dir": self.split_dir,
            "n_classes": self.n_classes,
            "n_test": self.n_test,
            "n_distractors": self.n_distractors,
            "models": {name: m.summary() for name, m in self.models.items()},
            "worst_of_best": self.worst,
            "report_html": REPORT_HTML_FILE,
            "report_md": REPORT_MD_FILE,
        }

    def kfp_outputs(self) -> tuple[dict[str, dict[str, float]], list[str], list[list[int]]]:
        """What a KFP component logs: per-model scalar metrics (for `Metrics`), and the
        best model's confusion matrix labels and rows (for `ClassificationMetrics`)."""
        scalars = {
            name: {"top1": m.top1, "top5": m.top5, "gap": m.gap, "n_test": float(m.n_test)}
            for name, m in self.models.items()
        }
        best = self.models[self.best_model]
        return scalars, list(best.confusion_labels), [list(r) for r in best.confusion_matrix]
