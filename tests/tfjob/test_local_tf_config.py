"""The TF_CONFIG the local executor gives each replica: the operator's shape, and what the
trainer reads back from it."""

from __future__ import annotations

import json

from landmarks.tfjob.local_executor import tf_config
from landmarks.train.tf_config import Replica, parse_tf_config

CLUSTER = {"chief": ["127.0.0.1:5000"], "worker": ["127.0.0.1:5001", "127.0.0.1:5002"]}


def test_written_as_the_operator_writes_it() -> None:
    assert tf_config(CLUSTER, "Worker", 1) == {
        "cluster": CLUSTER,
        "task": {"type": "worker", "index": 1},
        "environment": "cloud",
    }


def test_every_replica_reads_back_its_own_place_in_the_job() -> None:
    places = [("Chief", 0), ("Worker", 0), ("Worker", 1)]
    read = [parse_tf_config(json.dumps(tf_config(CLUSTER, t, i))) for t, i in places]
    assert read == [
        Replica("chief", 0, 3, True),
        Replica("worker", 0, 3, True),
        Replica("worker", 1, 3, True),
    ]
    assert [r.is_chief for r in read] == [True, False, False]


def test_each_replica_gets_its_own_copy_of_the_addresses() -> None:
    cluster = {"worker": ["127.0.0.1:5001"]}
    written = tf_config(cluster, "Worker", 0)
    cluster["worker"].append("127.0.0.1:5002")
    assert written["cluster"] == {"worker": ["127.0.0.1:5001"]}
