"""What ML Metadata holds about one KFP run, as JSON on stdout: the run's executions (each task)
with their output artifacts, read the way KFP's UI reads them (run context -> executions ->
output events -> artifacts). It runs inside the landmarks-kfp/mlmd-server image, which has the
ml-metadata client; the test calls it with `docker run --network host` against a port-forward.

    python mlmd_query.py --host 127.0.0.1 --port 18080 RUN_ID
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2


def _plain(properties: Any) -> dict[str, Any]:
    """MLMD property values as plain JSON values (a struct stays a dict)."""
    out: dict[str, Any] = {}
    for name, value in properties.items():
        kind = value.WhichOneof("value")
        if kind == "struct_value":
            out[name] = MessageToDict(value.struct_value)
        elif kind == "proto_value":
            out[name] = MessageToDict(value.proto_value)
        elif kind is not None:
            out[name] = getattr(value, kind)
    return out


def describe_run(store: metadata_store.MetadataStore, run_id: str) -> dict[str, Any]:
    context = store.get_context_by_type_and_name("system.PipelineRun", run_id)
    if context is None:
        return {"run_id": run_id, "executions": []}
    types = {t.id: t.name for t in store.get_execution_types()}
    artifact_types = {t.id: t.name for t in store.get_artifact_types()}
    executions = store.get_executions_by_context(context.id)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    outputs: dict[int, dict[str, list[int]]] = {}
    for event in events:
        if event.type != metadata_store_pb2.Event.OUTPUT:
            continue
        name = event.path.steps[0].key if event.path.steps else ""
        outputs.setdefault(event.execution_id, {}).setdefault(name, []).append(event.artifact_id)
    wanted = sorted({a for per in outputs.values() for ids in per.values() for a in ids})
    artifacts = {a.id: a for a in store.get_artifacts_by_id(wanted)} if wanted else {}
    described = []
    for execution in executions:
        described.append(
            {
                "id": execution.id,
                "type": types.get(execution.type_id, ""),
                "state": metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                "created_ms": execution.create_time_since_epoch,
                "updated_ms": execution.last_update_time_since_epoch,
                "properties": _plain(execution.custom_properties),
                "outputs": {
                    name: [
                        {
                            "id": a,
                            "type": artifact_types.get(artifacts[a].type_id, ""),
                            "uri": artifacts[a].uri,
                            "properties": _plain(artifacts[a].custom_properties),
                        }
                        for a in ids
                        if a in artifacts
                    ]
                    for name, ids in outputs.get(execution.id, {}).items()
                },
            }
        )
    return {"run_id": run_id, "context_id": context.id, "executions": described}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    config = metadata_store_pb2.MetadataStoreClientConfig(host=args.host, port=args.port)
    json.dump(describe_run(metadata_store.MetadataStore(config), args.run_id), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
