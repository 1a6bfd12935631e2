"""Evaluation stage: top-1/top-5 accuracy, GAP, per-class scores and a report per model.

`run_evaluate(EvaluateOptions(...))` is the entry point; `landmarks evaluate` and the KFP
component are thin shells over it. TensorFlow is only imported once prediction starts.
"""

from landmarks.evaluate.run import EvaluateOptions, run_evaluate
from landmarks.evaluate.scores import EvaluationResult, ModelEvaluation

__all__ = ["EvaluateOptions", "EvaluationResult", "ModelEvaluation", "run_evaluate"]
