"""The trainer's reading of TF_CONFIG, case by case: defaults the operator leaves out, the
replica that keeps the outputs, and each malformed value named in its error."""

from __future__ import annotations

import json

import pytest

from landmarks.errors import LandmarksError
from landmarks.train.tf_config import Replica, current_replica, make_strategy, parse_tf_config


def _text(cluster: object, task: object) -> str:
    return json.dumps({"cluster": cluster, "task": task, "environment": "cloud"})


@pytest.mark.parametrize("text", [None, "", "  \n"])
def test_absent_or_blank_tf_config_is_one_process_that_keeps_outputs(text: str | None) -> None:
    replica = parse_tf_config(text)
    assert replica == Replica("worker", 0, 1, False)
    assert not replica.distributed and replica.is_chief and replica.label == "worker-0"


def test_second_worker_of_a_chiefless_cluster_does_not_keep_outputs() -> None:
    replica = parse_tf_config(
        _text({"worker": ["a:1", "b:1", "c:1"]}, {"type": "worker", "index": 1})
    )
    assert replica == Replica("worker", 1, 3, False)
    assert replica.distributed and not replica.is_chief and replica.label == "worker-1"


def test_with_a_chief_every_worker_trains_and_none_keeps_outputs() -> None:
    cluster = {"chief": ["c:1"], "worker": ["a:1"]}
    worker = parse_tf_config(_text(cluster, {"type": "worker", "index": 0}))
    chief = parse_tf_config(_text(cluster, {"type": "chief", "index": 0}))
    assert worker == Replica("worker", 0, 2, True) and not worker.is_chief
    assert chief == Replica("chief", 0, 2, True) and chief.is_chief


def test_a_lone_chief_is_not_distributed() -> None:
    replica = parse_tf_config(_text({"chief": ["c:1"]}, {"type": "chief", "index": 0}))
    assert replica == Replica("chief", 0, 1, True)
    assert not replica.distributed and replica.is_chief


def test_task_type_is_case_insensitive_and_index_may_be_a_string() -> None:
    # The operator writes lower-case; a hand-written TF_CONFIG may say "Worker" and "1".
    replica = parse_tf_config(_text({"worker": ["a:1", "b:1"]}, {"type": "Worker", "index": "1"}))
    assert (replica.task_type, replica.task_index) == ("worker", 1)


def test_task_without_type_or_index_is_worker_zero() -> None:
    replica = parse_tf_config(_text({"worker": ["a:1", "b:1"]}, {}))
    assert replica == Replica("worker", 0, 2, False)


def test_a_task_without_a_cluster_is_one_process_with_that_name() -> None:
    replica = parse_tf_config(_text({}, {"type": "chief", "index": 4}))
    assert replica == Replica("chief", 4, 1, False)


def test_null_cluster_and_task_read_as_empty() -> None:
    assert parse_tf_config('{"cluster": null, "task": null}') == Replica()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", r"^TF_CONFIG must be a JSON object with 'cluster' and 'task'$"),
        ('{"cluster": ["a:1"], "task": {}}', r"^TF_CONFIG 'cluster' and 'task' must be JSON"),
        ('{"cluster": {}, "task": ["worker"]}', r"^TF_CONFIG 'cluster' and 'task' must be JSON"),
        (
            _text({"ps": ["p:1"], "evaluator": ["e:1"], "worker": ["a:1"]}, {}),
            r"^TF_CONFIG has evaluator, ps replicas; the trainer runs synchronous all-reduce "
            r"training \(MultiWorkerMirroredStrategy\): use Worker replicas and at most one "
            r"Chief$",
        ),
        (
            _text({"chief": ["c:1", "d:1"]}, {"type": "chief"}),
            r"^TF_CONFIG lists 2 chiefs; at most one is allowed$",
        ),
        (
            _text({"worker": ["a:1"]}, {"type": "worker", "index": "first"}),
            r"^TF_CONFIG task index is not an integer: \{'type': 'worker', 'index': 'first'\}$",
        ),
        (
            _text({"worker": ["a:1"]}, {"type": "worker", "index": None}),
            r"^TF_CONFIG task index is not an integer",
        ),
        (
            _text({"worker": ["a:1"]}, {"type": "ps", "index": 0}),
            r"^TF_CONFIG task type 'ps' is not chief or worker$",
        ),
        (
            _text({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 2}),
            r"^TF_CONFIG task worker:2 is not in the cluster \(2 worker addresses\)$",
        ),
        (
            _text({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": -1}),
            r"^TF_CONFIG task worker:-1 is not in the cluster",
        ),
        (
            _text({"worker": ["a:1"]}, {"type": "chief", "index": 0}),
            r"^TF_CONFIG task chief:0 is not in the cluster \(0 chief addresses\)$",
        ),
    ],
)
def test_malformed_tf_config_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(LandmarksError, match=message):
        parse_tf_config(text)


def test_invalid_json_says_so_with_the_parser_message() -> None:
    with pytest.raises(LandmarksError, match=r"^TF_CONFIG is not valid JSON: Expecting"):
        parse_tf_config("{cluster")


def test_current_replica_reads_the_given_environment_or_the_process_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = _text({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1})
    assert current_replica({"TF_CONFIG": text}).task_index == 1
    assert current_replica({}) == Replica()
    monkeypatch.setenv("TF_CONFIG", text)
    assert current_replica().task_index == 1
    assert current_replica({}) == Replica()  # an explicit empty env wins over the process's


def test_a_single_process_trains_under_the_default_strategy() -> None:
    tf = pytest.importorskip("tensorflow")
    strategy = make_strategy(Replica())
    assert strategy is tf.distribute.get_strategy()
    assert not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
