import json

import pytest

from landmarks.errors import LandmarksError
from landmarks.train.tf_config import parse_tf_config


def _tf_config(cluster: dict, task_type: str, index: int) -> str:
    task = {"type": task_type, "index": index}
    return json.dumps({"cluster": cluster, "task": task, "environment": "cloud"})


def test_no_tf_config_is_a_single_chief_process() -> None:
    replica = parse_tf_config(None)
    assert not replica.distributed and replica.is_chief


def test_worker_zero_is_chief_without_a_chief_replica() -> None:
    cluster = {"worker": ["w0:2222", "w1:2222"]}
    first, second = (parse_tf_config(_tf_config(cluster, "worker", i)) for i in (0, 1))
    assert first.distributed and first.num_workers == 2
    assert first.is_chief and not second.is_chief


def test_chief_replica_is_the_chief_and_counts_as_a_worker() -> None:
    cluster = {"chief": ["c:2222"], "worker": ["w0:2222", "w1:2222"]}
    chief = parse_tf_config(_tf_config(cluster, "chief", 0))
    worker0 = parse_tf_config(_tf_config(cluster, "worker", 0))
    assert chief.is_chief and not worker0.is_chief
    assert chief.num_workers == 3 and chief.label == "chief-0"


def test_parameter_servers_are_refused_with_the_reason() -> None:
    cluster = {"ps": ["p:2222"], "worker": ["w0:2222"]}
    with pytest.raises(LandmarksError, match=r"ps replicas.*MultiWorkerMirroredStrategy"):
        parse_tf_config(_tf_config(cluster, "worker", 0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 3}}', "not in the"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "evaluator", "index": 0}}', "evaluator"),
    ],
)
def test_malformed_tf_config_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(LandmarksError, match=message):
        parse_tf_config(text)
