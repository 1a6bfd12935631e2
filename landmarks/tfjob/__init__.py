"""TFJobs (kubeflow.org/v1): the spec built once (`spec`), and run as local processes (`local`)."""

from landmarks.tfjob.local import JobResult, LocalTFJob, run_local, tf_config
from landmarks.tfjob.spec import TFJobSpec, training_job

__all__ = ["JobResult", "LocalTFJob", "TFJobSpec", "run_local", "tf_config", "training_job"]
