"""TFJobs (kubeflow.org/v1): the spec built once (`spec`), run as local processes (`local`)
or on a cluster (`launcher`); both return a `results.JobResult`."""

from landmarks.tfjob.local_executor import LocalTFJob, run_local, tf_config
from landmarks.tfjob.results import JobResult
from landmarks.tfjob.spec import TFJobSpec, training_job

__all__ = ["JobResult", "LocalTFJob", "TFJobSpec", "run_local", "tf_config", "training_job"]
