"""The ML Metadata server image (scripts/kfp/mlmd-server.Dockerfile) answering KFP's calls.

The server runs as it would in the cluster (read-only root filesystem, no capabilities, its
store on a volume at /data). The client is ml-metadata's own: its MetadataStore and its
generated gRPC stub, run in the image (`docker exec`, and a second container on the host's
network through the published port), making the calls KFP 2.17's Go client makes
(backend/src/v2/metadata/client.go) in the shapes it makes them, and reading back what the
front end's store kept, the status codes the Go client branches on included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.images.containers import LABEL, Container, ContainerRunner, docker
from tests.images.dockerfile import REPO

pytestmark = pytest.mark.images

KFP = REPO / "scripts" / "kfp"
DOCKERFILE = KFP / "mlmd-server.Dockerfile"
SERVER = KFP / "mlmd_server.py"
ROLE = "mlmd-server"
PORT = 8080
BUILD_TIMEOUT_S = 600
CLIENT_TIMEOUT_S = 120
# Every RPC KFP 2.17.0's Go client makes (`c.svc.<RPC>` in backend/src/v2/metadata/client.go; the
# driver, launcher and importer reach MLMD only through it). Plain insecure gRPC (TLS only with
# --metadata_tls_enabled), the generated stub's full names (/ml_metadata.MetadataStoreService/...),
# messages up to 100 MiB either way, retries on ABORTED and UNAVAILABLE.
GO_CLIENT_RPCS = frozenset(
    {
        "GetArtifactType", "GetArtifactsByID", "GetArtifactsByURI", "GetContextByTypeAndName",
        "GetContextType", "GetContextsByArtifact", "GetContextsByExecution", "GetContextsByID",
        "GetEventsByArtifactIDs", "GetEventsByExecutionIDs", "GetExecutionByTypeAndName",
        "GetExecutionsByContext", "GetExecutionsByID", "GetParentContextsByContext",
        "PutArtifactType", "PutArtifacts", "PutContextType", "PutContexts", "PutExecution",
        "PutExecutionType", "PutParentContexts",
    }
)  # fmt: skip
# Where `scripts/kfp/build.sh source` clones KFP (read when there, as the build reads it).
KFP_CLIENT_GO = (
    Path(os.environ.get("LANDMARKS_CACHE", Path.home() / ".cache/landmarks"))
    / "kfp-src/pipelines-2.17.0/backend/src/v2/metadata/client.go"
)

# The client side, run with the image's Python: `python3 -c CLIENT SCENARIO HOST PORT`. It prints
# one JSON object (what it saw) on its last line; the test asserts on that.
CLIENT = r"""
import json, sys, time
import grpc
from google.protobuf import json_format, struct_pb2
from ml_metadata import errors
from ml_metadata.metadata_store import ListOptions, MetadataStore
from ml_metadata.proto import metadata_store_pb2 as mlmd
from ml_metadata.proto import metadata_store_service_pb2 as svc
from ml_metadata.proto import metadata_store_service_pb2_grpc as svc_grpc

scenario, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
LIMIT = 100 * 1024 * 1024  # what KFP's Go client allows either way
channel = grpc.insecure_channel(
    f"{host}:{port}",
    options=[("grpc.max_receive_message_length", LIMIT), ("grpc.max_send_message_length", LIMIT)],
)
stub = svc_grpc.MetadataStoreServiceStub(channel)
config = mlmd.MetadataStoreClientConfig(host=host, port=port)
config.channel_arguments.max_receive_message_length = LIMIT
out = {}


def status(method, request):
    try:
        getattr(stub, method)(request, timeout=30)
        return "OK"
    except grpc.RpcError as err:
        return err.code().name


def client_error(call):
    try:
        call()
        return None
    except errors.StatusError as err:
        return type(err).__name__


def string(value):
    return mlmd.Value(string_value=value)


def wait():
    deadline = time.time() + 60
    while True:
        try:
            stub.GetArtifactTypes(svc.GetArtifactTypesRequest(), timeout=1)
            return time.time()
        except grpc.RpcError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)


def kfp():
    store = MetadataStore(config)
    # getContextTypeID: GetContextType, NOT_FOUND -> PutContextType
    out["missing_context_type"] = status(
        "GetContextType", svc.GetContextTypeRequest(type_name="system.Pipeline")
    )
    out["missing_type_client"] = client_error(lambda: store.get_artifact_type("system.Model"))
    pipeline_type = stub.PutContextType(
        svc.PutContextTypeRequest(context_type=mlmd.ContextType(name="system.Pipeline"))
    ).type_id
    run_type = store.put_context_type(mlmd.ContextType(name="system.PipelineRun"))
    # getOrInsertContext: GetContextByTypeAndName (no context, no error) -> PutContexts,
    # ALREADY_EXISTS for a second writer -> GetContextByTypeAndName
    by_name = svc.GetContextByTypeAndNameRequest(type_name="system.Pipeline", context_name="lm")
    out["missing_context_has_context"] = stub.GetContextByTypeAndName(by_name).HasField("context")
    pipeline = mlmd.Context(type_id=pipeline_type, name="lm")
    [pipeline_id] = store.put_contexts([pipeline])
    out["duplicate_context"] = status("PutContexts", svc.PutContextsRequest(contexts=[pipeline]))
    out["duplicate_context_client"] = client_error(lambda: store.put_contexts([pipeline]))
    out["context_by_name"] = stub.GetContextByTypeAndName(by_name).context.id == pipeline_id
    run = mlmd.Context(type_id=run_type, name="run-1")
    run.custom_properties["pipeline_root"].CopyFrom(string("minio://mlpipeline/v2/artifacts"))
    [run_id] = store.put_contexts([run])
    pipeline.id, run.id = pipeline_id, run_id
    out["empty_name"] = client_error(
        lambda: store.put_contexts([mlmd.Context(type_id=run_type, name="")])
    )
    by_id = stub.GetContextsByID(svc.GetContextsByIDRequest(context_ids=[run_id]))
    out["contexts_by_id"] = [c.name for c in by_id.contexts]
    # GetPipeline: GetParentContextsByContext, PutParentContexts (ALREADY_EXISTS tolerated)
    parents = svc.GetParentContextsByContextRequest(context_id=run_id)
    out["parents_before"] = len(stub.GetParentContextsByContext(parents).contexts)
    link = svc.PutParentContextsRequest(
        parent_contexts=[mlmd.ParentContext(child_id=run_id, parent_id=pipeline_id)]
    )
    stub.PutParentContexts(link)
    out["parent_again"] = status("PutParentContexts", link)
    after = stub.GetParentContextsByContext(parents).contexts
    out["parents_after"] = [c.id == pipeline_id for c in after]
    ids = [run_id, pipeline_id]
    many_parents = stub.GetParentContextsByContexts(
        svc.GetParentContextsByContextsRequest(context_ids=ids)
    ).contexts
    out["parents_by_contexts"] = {
        ("run" if k == run_id else k): [c.name for c in v.parent_contexts]
        for k, v in many_parents.items()
    }
    many_children = stub.GetChildrenContextsByContexts(
        svc.GetChildrenContextsByContextsRequest(context_ids=ids)
    ).contexts
    out["children_by_contexts"] = {
        ("pipeline" if k == pipeline_id else k): [c.name for c in v.children_contexts]
        for k, v in many_children.items()
    }
    # CreateExecution: PutExecutionType (idempotent), PutExecution with contexts, GetExecutionsByID
    dag_type_req = svc.PutExecutionTypeRequest(
        execution_type=mlmd.ExecutionType(name="system.DAGExecution")
    )
    dag_type = stub.PutExecutionType(dag_type_req).type_id
    out["execution_type_idempotent"] = stub.PutExecutionType(dag_type_req).type_id == dag_type
    container_type = stub.PutExecutionType(
        svc.PutExecutionTypeRequest(
            execution_type=mlmd.ExecutionType(name="system.ContainerExecution")
        )
    ).type_id
    dag = mlmd.Execution(type_id=dag_type, last_known_state=mlmd.Execution.RUNNING)
    dag.custom_properties["task_name"].CopyFrom(string(""))
    dag_id = stub.PutExecution(
        svc.PutExecutionRequest(execution=dag, contexts=[pipeline, run])
    ).execution_id
    # RecordArtifact: PutArtifactType (idempotent), PutArtifacts, GetArtifactsByID
    model_type_req = svc.PutArtifactTypeRequest(
        artifact_type=mlmd.ArtifactType(name="system.Model")
    )
    model_type = stub.PutArtifactType(model_type_req).type_id
    out["artifact_type_idempotent"] = stub.PutArtifactType(model_type_req).type_id == model_type
    out["artifact_type_found"] = stub.GetArtifactType(
        svc.GetArtifactTypeRequest(type_name="system.Model")
    ).artifact_type.id == model_type
    data = mlmd.Artifact(type_id=model_type, uri="minio://mlpipeline/v2/artifacts/run-1/split",
                         state=mlmd.Artifact.LIVE)
    data.custom_properties["display_name"].CopyFrom(string("split"))
    data.custom_properties["accuracy"].double_value = 0.875
    meta = struct_pb2.Struct()
    meta.update({"classes": 12, "labels": ["a", "b"], "nested": {"ok": True}})
    data.custom_properties["metadata"].struct_value.CopyFrom(meta)
    [data_id] = stub.PutArtifacts(svc.PutArtifactsRequest(artifacts=[data])).artifact_ids
    [stored] = stub.GetArtifactsByID(svc.GetArtifactsByIDRequest(artifact_ids=[data_id])).artifacts
    props = stored.custom_properties
    out["artifact_round_trip"] = {
        "uri": stored.uri,
        "state": mlmd.Artifact.State.Name(stored.state),
        "display_name": props["display_name"].string_value,
        "accuracy": props["accuracy"].double_value,
        "metadata": json_format.MessageToDict(props["metadata"].struct_value),
        "type": stored.type,
    }
    # the task: input event on an existing artifact, output artifact created with its event,
    # attributed to and associated with both contexts, a child of the DAG execution
    task = mlmd.Execution(type_id=container_type, name="run-1-train",
                          last_known_state=mlmd.Execution.RUNNING)
    task.custom_properties["parent_dag_id"].int_value = dag_id
    task.custom_properties["task_name"].CopyFrom(string("train"))
    inputs = struct_pb2.Struct()
    inputs.update({"epochs": 3.0, "lr": 0.001})
    task.custom_properties["inputs"].struct_value.CopyFrom(inputs)
    def path(name):
        return mlmd.Event.Path(steps=[mlmd.Event.Path.Step(key=name)])
    model = mlmd.Artifact(type_id=model_type, uri="minio://mlpipeline/v2/artifacts/run-1/model",
                          state=mlmd.Artifact.LIVE)
    model.custom_properties["display_name"].CopyFrom(string("model"))
    put = stub.PutExecution(svc.PutExecutionRequest(
        execution=task,
        contexts=[pipeline, run],
        artifact_event_pairs=[
            svc.PutExecutionRequest.ArtifactAndEvent(
                event=mlmd.Event(artifact_id=data_id, type=mlmd.Event.INPUT, path=path("split"))
            ),
            svc.PutExecutionRequest.ArtifactAndEvent(
                artifact=model, event=mlmd.Event(type=mlmd.Event.OUTPUT, path=path("model"))
            ),
        ],
    ))
    task_id, model_id = put.execution_id, put.artifact_ids[1]
    # PrePublishExecution / PublishExecution: PutExecution on the stored execution
    by_id = svc.GetExecutionsByIDRequest(execution_ids=[task_id])
    [task] = stub.GetExecutionsByID(by_id).executions
    task.custom_properties["pod_name"].CopyFrom(string("run-1-train-pod"))
    task.last_known_state = mlmd.Execution.COMPLETE
    stub.PutExecution(svc.PutExecutionRequest(execution=task, contexts=[pipeline, run]))
    [task] = stub.GetExecutionsByID(by_id).executions
    out["task"] = {
        "state": mlmd.Execution.State.Name(task.last_known_state),
        "pod_name": task.custom_properties["pod_name"].string_value,
        "inputs": json_format.MessageToDict(task.custom_properties["inputs"].struct_value),
    }
    found = stub.GetExecutionByTypeAndName(svc.GetExecutionByTypeAndNameRequest(
        type_name="system.ContainerExecution", execution_name="run-1-train"
    ))
    out["execution_by_name"] = found.execution.id == task_id
    # GetExecutionsInDAG: GetExecutionsByContext with the Go client's options (a filter on the
    # parent DAG, or an empty filter, and an empty page token, both set)
    def in_run(query):
        options = mlmd.ListOperationOptions(filter_query=query, next_page_token="")
        res = stub.GetExecutionsByContext(
            svc.GetExecutionsByContextRequest(context_id=run_id, options=options)
        )
        return sorted(e.id for e in res.executions), res.next_page_token
    out["executions_in_dag"] = in_run(f"custom_properties.parent_dag_id.int_value = {dag_id}")
    out["executions_in_run"] = in_run("")
    out["expected_ids"] = {"dag": dag_id, "task": task_id}
    out["executions_by_context_client"] = sorted(
        e.id for e in store.get_executions_by_context(
            run_id, list_options=ListOptions(filter_query="last_known_state = COMPLETE")
        )
    )
    # GetOutputArtifactsByExecutionId, GetArtifactName, FindMatchedArtifact
    events = stub.GetEventsByExecutionIDs(
        svc.GetEventsByExecutionIDsRequest(execution_ids=[task_id])
    ).events
    out["events"] = sorted(
        (mlmd.Event.Type.Name(e.type), e.path.steps[0].key, e.artifact_id in (model_id, data_id))
        for e in events
    )
    by_artifact = stub.GetEventsByArtifactIDs(
        svc.GetEventsByArtifactIDsRequest(artifact_ids=[model_id])
    ).events
    out["events_by_artifact"] = [
        (e.execution_id == task_id, e.path.steps[0].key) for e in by_artifact
    ]
    out["artifacts_by_uri"] = [a.id == model_id for a in stub.GetArtifactsByURI(
        svc.GetArtifactsByURIRequest(uris=[model.uri])
    ).artifacts]
    out["contexts_by_artifact"] = sorted(c.name for c in stub.GetContextsByArtifact(
        svc.GetContextsByArtifactRequest(artifact_id=model_id)
    ).contexts)
    out["contexts_by_execution"] = sorted(c.name for c in stub.GetContextsByExecution(
        svc.GetContextsByExecutionRequest(execution_id=task_id)
    ).contexts)
    out["artifacts_by_context_client"] = sorted(
        a.uri.rsplit("/", 1)[1] for a in store.get_artifacts_by_context(run_id)
    )
    # status codes beyond NOT_FOUND and ALREADY_EXISTS, and the one method the store lacks
    out["incompatible_type"] = status("PutArtifactType", svc.PutArtifactTypeRequest(
        artifact_type=mlmd.ArtifactType(name="system.Model", properties={"x": mlmd.INT})
    ))
    out["bad_filter"] = status("GetExecutionsByContext", svc.GetExecutionsByContextRequest(
        context_id=run_id, options=mlmd.ListOperationOptions(filter_query="no such ((")
    ))
    out["lineage_graph"] = status("GetLineageGraph", svc.GetLineageGraphRequest())
    # a message over gRPC's default 4 MiB limit, as the Go client may send (100 MiB allowed)
    big = mlmd.Artifact(type_id=model_type, uri="minio://big")
    big.custom_properties["blob"].string_value = "x" * (6 * 1024 * 1024)
    [big_id] = stub.PutArtifacts(svc.PutArtifactsRequest(artifacts=[big])).artifact_ids
    [back] = stub.GetArtifactsByID(svc.GetArtifactsByIDRequest(artifact_ids=[big_id])).artifacts
    out["big_message_bytes"] = len(back.custom_properties["blob"].string_value)


def persisted():
    res = stub.GetContextByTypeAndName(
        svc.GetContextByTypeAndNameRequest(type_name="system.PipelineRun", context_name="run-1")
    )
    execs = stub.GetExecutionsByContext(
        svc.GetExecutionsByContextRequest(context_id=res.context.id)
    )
    out["run_context"] = res.context.custom_properties["pipeline_root"].string_value
    out["executions"] = sorted(e.name for e in execs.executions)
    types = stub.GetArtifactTypes(svc.GetArtifactTypesRequest()).artifact_types
    out["artifact_types"] = sorted(t.name for t in types)


def bench():
    store = MetadataStore(config)
    type_id = store.put_artifact_type(mlmd.ArtifactType(name="bench.Artifact"))
    times = []
    for i in range(200):
        artifact = mlmd.Artifact(type_id=type_id, uri=f"minio://bench/{i}")
        artifact.custom_properties["i"].int_value = i
        start = time.perf_counter()
        store.put_artifacts([artifact])
        times.append(time.perf_counter() - start)
    times.sort()
    out.update(calls=len(times), total_s=sum(times), p50_ms=times[100] * 1e3)
    out["p99_ms"] = times[198] * 1e3


out["answered_at"] = wait()  # every scenario first waits until the server answers
if scenario != "wait":
    {"kfp": kfp, "persisted": persisted, "bench": bench}[scenario]()
print(json.dumps(out))
"""


def _mlmd_version() -> str:
    found = re.search(r"^MLMD_VERSION=(\S+)$", (KFP / "versions.env").read_text(), re.M)
    assert found, "scripts/kfp/versions.env has no MLMD_VERSION"
    return found.group(1)


@dataclass
class Server:
    container: Container
    volume: str
    started_at: float  # host clock, just before `docker start`


@pytest.fixture(scope="module")
def mlmd_image(python_base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """landmarks-kfp/mlmd-server:<MLMD_VERSION>, built from this checkout's Dockerfile.

    Built every session: the classic builder's cache makes an unchanged build take seconds,
    and the image tested is then always the one this checkout's Dockerfile and script make
    (an existing tag could be older than either).
    """
    ref = f"landmarks-kfp/mlmd-server:{_mlmd_version()}"
    context = tmp_path_factory.mktemp("mlmd-context")
    shutil.copy2(SERVER, context / SERVER.name)
    start = time.monotonic()
    proc = subprocess.run(
        [
            "docker", "build", "--quiet", "-f", str(DOCKERFILE), "-t", ref,
            "--build-arg", f"BASE_IMAGE={python_base_image}",
            "--build-arg", f"MLMD_VERSION={_mlmd_version()}",
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    assert proc.returncode == 0, f"docker build of {ref} failed:\n{proc.stdout}\n{proc.stderr}"
    size = int(docker("image", "inspect", "--format", "{{.Size}}", ref).strip())
    print(f"\n{ref}: built in {time.monotonic() - start:.1f}s, {size / 1e6:.1f} MB")
    return ref


def _volume(runner: ContainerRunner) -> str:
    """A named volume for /data: it outlives a server container, as a PVC would."""
    name = f"landmarks-mlmd-test-{uuid.uuid4().hex[:12]}"
    docker("volume", "create", f"--label={LABEL}={runner.session}", name)
    return name


@pytest.fixture(scope="module")
def runner(mlmd_image: str) -> Iterator[ContainerRunner]:
    """Starts the containers; removes them, then the volumes it made, by id and name."""
    runner = ContainerRunner({ROLE: mlmd_image})
    try:
        yield runner
    finally:
        runner.cleanup()  # the containers first: a volume in use cannot be removed
        names = docker("volume", "ls", "--quiet", f"--filter=label={LABEL}={runner.session}")
        for name in names.split():
            docker("volume", "rm", "--force", name, check=False)


def _start_server(runner: ContainerRunner, volume: str) -> Server:
    opts = runner.create_args(
        ROLE,
        (),
        volumes={volume: "/data"},
        network="bridge",
        extra=[f"--publish=127.0.0.1::{PORT}"],
    )
    cid = docker(*opts).strip()
    container = Container(cid, runner.images[ROLE], [])
    runner.started.append(container)
    started_at = time.time()
    docker("start", cid)
    return Server(container, volume, started_at)


@pytest.fixture(scope="module")
def server(runner: ContainerRunner) -> Server:
    return _start_server(runner, _volume(runner))


def _client(server: Server, scenario: str) -> dict:
    """Runs the client in the server's container, against localhost:8080."""
    proc = subprocess.run(
        ["docker", "exec", server.container.id, "python3", "-c", CLIENT, scenario, "localhost",
         str(PORT)],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"client {scenario} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n"
        f"{proc.stderr}\n--- server log\n{server.container.logs()}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_server_starts_logs_its_versions_and_answers(server: Server) -> None:
    answered = _client(server, "wait")["answered_at"]
    log = server.container.logs()
    assert re.search(
        rf"ml-metadata {re.escape(_mlmd_version())} \(grpcio [\d.]+, protobuf [\d.]+\): "
        rf"ml_metadata\.MetadataStoreService, 52 methods \(49 by the store\) on \[::\]:{PORT}, "
        r"storage sqlite:/data/mlmd\.sqlite",
        log,
    ), log
    user = docker("exec", server.container.id, "id", "-u").strip()
    assert user == "1000"
    print(
        f"\nstart -> first RPC answered: {answered - server.started_at:.2f}s (upper bound: "
        "includes `docker exec` and the client's imports)"
    )


def test_kfp_go_client_calls_round_trip(server: Server) -> None:
    seen = _client(server, "kfp")
    ids = seen["expected_ids"]
    # The codes KFP's Go client branches on, as gRPC statuses and as the Python client's errors.
    assert seen["missing_context_type"] == "NOT_FOUND"
    assert seen["missing_type_client"] == "NotFoundError"
    assert seen["duplicate_context"] == "ALREADY_EXISTS"
    assert seen["duplicate_context_client"] == "AlreadyExistsError"
    assert seen["parent_again"] == "ALREADY_EXISTS"
    assert seen["empty_name"] == "InvalidArgumentError"
    assert seen["incompatible_type"] == "ALREADY_EXISTS"
    assert seen["bad_filter"] == "INVALID_ARGUMENT"
    assert seen["lineage_graph"] == "UNIMPLEMENTED"
    # Contexts, their parent link (and the two methods composed by the front end).
    assert seen["missing_context_has_context"] is False
    assert seen["context_by_name"] is True
    assert seen["contexts_by_id"] == ["run-1"]
    assert (seen["parents_before"], seen["parents_after"]) == (0, [True])
    assert seen["parents_by_contexts"] == {"run": ["lm"]}
    assert seen["children_by_contexts"] == {"pipeline": ["run-1"]}
    # Types are idempotent, custom properties (string, double, int, struct) come back.
    assert seen["execution_type_idempotent"] and seen["artifact_type_idempotent"]
    assert seen["artifact_type_found"]
    assert seen["artifact_round_trip"] == {
        "uri": "minio://mlpipeline/v2/artifacts/run-1/split",
        "state": "LIVE",
        "display_name": "split",
        "accuracy": 0.875,
        "metadata": {"classes": 12.0, "labels": ["a", "b"], "nested": {"ok": True}},
        "type": "system.Model",
    }
    assert seen["task"] == {
        "state": "COMPLETE",
        "pod_name": "run-1-train-pod",
        "inputs": {"epochs": 3.0, "lr": 0.001},
    }
    assert seen["execution_by_name"] is True
    # The DAG filter the Go client sends, with its empty page token.
    assert seen["executions_in_dag"] == [[ids["task"]], ""]
    assert seen["executions_in_run"] == [sorted(ids.values()), ""]
    assert seen["executions_by_context_client"] == [ids["task"]]
    # Events, attributions and associations from the one PutExecution.
    assert seen["events"] == [["INPUT", "split", True], ["OUTPUT", "model", True]]
    assert seen["events_by_artifact"] == [[True, "model"]]
    assert seen["artifacts_by_uri"] == [True]
    assert seen["contexts_by_artifact"] == ["lm", "run-1"]
    assert seen["contexts_by_execution"] == ["lm", "run-1"]
    assert seen["artifacts_by_context_client"] == ["model", "split"]
    assert seen["big_message_bytes"] == 6 * 1024 * 1024


def test_put_artifacts_latency_through_the_published_port(
    server: Server, runner: ContainerRunner
) -> None:
    """200 PutArtifacts from a second container over the published port (printed, not held)."""
    published = docker("port", server.container.id, f"{PORT}/tcp").split()[0]
    host, port = published.rsplit(":", 1)
    result = runner.run(
        ROLE, "-c", CLIENT, "bench", host, port, entrypoint="python3", network="host", timeout=120
    ).check()
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["calls"] == 200
    print(
        f"\n200 PutArtifacts via {published}: {seen['total_s']:.2f}s, "
        f"p50 {seen['p50_ms']:.2f} ms, p99 {seen['p99_ms']:.2f} ms"
    )


def test_sigterm_stops_cleanly_and_a_new_server_reads_the_same_volume(
    runner: ContainerRunner,
) -> None:
    first = _start_server(runner, _volume(runner))
    _client(first, "kfp")
    start = time.monotonic()
    docker("stop", "--time=20", first.container.id)
    stopped_s = time.monotonic() - start
    code = docker("inspect", "--format", "{{.State.ExitCode}}", first.container.id).strip()
    log = first.container.logs()
    assert code == "0", log
    assert "Terminated: stopping" in log and log.rstrip().endswith("stopped"), log
    seen = _client(_start_server(runner, first.volume), "persisted")
    assert seen["run_context"] == "minio://mlpipeline/v2/artifacts"
    assert seen["executions"] == ["", "run-1-train"]
    assert "system.Model" in seen["artifact_types"]
    print(f"\ndocker stop (SIGTERM) -> exited 0 in {stopped_s:.2f}s")


def test_the_image_pins_the_version_of_versions_env(mlmd_image: str) -> None:
    assert mlmd_image.endswith(":" + _mlmd_version())
    label = docker(
        "image", "inspect", "--format",
        '{{index .Config.Labels "org.opencontainers.image.version"}}', mlmd_image,
    ).strip()  # fmt: skip
    assert label == _mlmd_version()
    assert Path(SERVER).read_text().startswith("#!/usr/bin/env python3")


def test_the_client_makes_every_rpc_of_kfps_go_client() -> None:
    called = set(re.findall(r"stub\.(\w+)\(", CLIENT)) | set(
        re.findall(r'status\(\s*"(\w+)"', CLIENT)
    )
    assert not GO_CLIENT_RPCS - called, sorted(GO_CLIENT_RPCS - called)
    if KFP_CLIENT_GO.is_file():
        assert set(re.findall(r"c\.svc\.(\w+)\(", KFP_CLIENT_GO.read_text())) == GO_CLIENT_RPCS
