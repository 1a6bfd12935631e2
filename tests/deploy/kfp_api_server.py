"""A Kubeflow Pipelines API on 127.0.0.1 whose surface is kfp-server-api's, for the upload tests.

A real KFP backend (MySQL, Argo, an object store) cannot run here. What `pipelines.upload` can
get wrong against one is of two kinds, and this server keeps them apart:

- the API's surface: which endpoints exist, their query parameters, upload fields and message
  fields. None of that is written here: `tests.deploy.kfp_api_spec` reads it from the
  generated `kfp_server_api` package that kfp.Client itself is built on. A request outside it
  is answered 400/404 with the reason (and recorded in `refusals`, so a test can fail on it
  even where the client swallows the error), and every answer is a generated model, checked
  against the type the endpoint declares, serialized by the package's own serializer;
- the backend's behaviour for the calls the deploy relies on, which is ours to state: a
  version name is unique within its pipeline (409, as the backend's unique index answers),
  lists honour an EQUALS filter on display_name and page with next_page_token, an uploaded
  package with a platform spec is stored as {pipeline_spec, platform_spec}, and a run goes
  through the states in `run_states`, one per read.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kfp_server_api
import yaml
from kfp_server_api import models

from tests.deploy.kfp_api_spec import (
    ApiMismatch,
    Endpoint,
    check_message,
    find_endpoint,
    published_endpoints,
    to_json,
)

CREATED_AT = "2026-11-25T08:00:00Z"


@dataclass
class Request:
    operation: str
    query: dict[str, str]
    body: Any = None


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class KfpBackendState:
    pipelines: dict[str, models.V2beta1Pipeline] = field(default_factory=dict)
    versions: dict[str, list[models.V2beta1PipelineVersion]] = field(default_factory=dict)
    experiments: dict[str, models.V2beta1Experiment] = field(default_factory=dict)
    runs: dict[str, models.V2beta1Run] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    # Requests the published API does not describe: a test fails on any.
    refusals: list[str] = field(default_factory=list)
    # States a run reports on successive reads; the last one sticks.
    run_states: list[str] = field(default_factory=lambda: ["RUNNING", "SUCCEEDED"])
    run_error: str | None = None
    page_size_cap: int = 2  # small, so clients must follow next_page_token
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _run_reads: dict[str, int] = field(default_factory=dict)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}"

    def calls(self, operation: str) -> list[Request]:
        """Requests to one generated operation, e.g. `run_service_create_run`."""
        return [r for r in self.requests if r.operation == operation]

    def version_names(self) -> list[str]:
        (versions,) = self.versions.values()
        return [v.display_name for v in versions]


def _display_name_filter(filter_json: str | None) -> str | None:
    """The name an EQUALS filter on display_name asks for (None: no filter).

    The backend reads this query string with protojson, not the OpenAPI models: field names
    in lowerCamelCase or as in the proto, the operation by name or number.
    """
    if not filter_json:
        return None
    (predicate,) = json.loads(filter_json)["predicates"]
    as_proto = {re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), k): v for k, v in predicate.items()}
    operations = models.V2beta1PredicateOperation.allowable_values
    if isinstance(as_proto.get("operation"), int):
        as_proto["operation"] = operations[as_proto["operation"]]
    check_message(as_proto, "V2beta1Predicate", "filter.predicates[0]")
    if as_proto["key"] != "display_name" or as_proto["operation"] != "EQUALS":
        raise ApiError(400, f"this server filters on display_name EQUALS only: {predicate}")
    return as_proto["string_value"]


def _page(items: list[Any], query: dict[str, str], cap: int) -> tuple[list[Any], str]:
    size = min(int(query.get("page_size") or 10), cap)
    start = int(query.get("page_token") or 0)
    end = start + size
    return items[start:end], str(end) if end < len(items) else ""


def _stored_spec(package: bytes) -> Any:
    docs = [doc for doc in yaml.safe_load_all(package) if doc]
    if len(docs) > 1:
        return {"pipeline_spec": docs[0], "platform_spec": docs[1]}
    return docs[0]


def _pipeline(state: KfpBackendState, pipeline_id: str) -> models.V2beta1Pipeline:
    if pipeline_id not in state.pipelines:
        raise ApiError(404, f"pipeline {pipeline_id} not found")
    return state.pipelines[pipeline_id]


Params = dict[str, str]
Files = dict[str, bytes]
# One handler per generated operation the deploy uses: (state, path params, query, body, files).
Handler = Callable[[KfpBackendState, Params, Params, Any, Files], Any]


def _healthz(state: KfpBackendState, params: Params, query: Params, body: Any, files: Files) -> Any:
    return models.V2beta1GetHealthzResponse(multi_user=False)


def _create_pipeline(
    state: KfpBackendState, params: Params, query: Params, body: Any, files: Files
) -> Any:
    pipeline = models.V2beta1Pipeline(
        pipeline_id=state.new_id("pipeline"),
        display_name=body.display_name,
        description=body.description,
        created_at=CREATED_AT,
    )
    state.pipelines[pipeline.pipeline_id] = pipeline
    state.versions[pipeline.pipeline_id] = []
    return pipeline


def _list_pipelines(
    state: KfpBackendState, params: Params, query: Params, body: Any, files: Files
) -> Any:
    wanted = _display_name_filter(query.get("filter"))
    found = [p for p in state.pipelines.values() if wanted in (None, p.display_name)]
    page, token = _page(found, query, state.page_size_cap)
    return models.V2beta1ListPipelinesResponse(
        pipelines=page, total_size=len(found), next_page_token=token
    )


def _list_versions(
    state: KfpBackendState, params: Params, query: Params, body: Any, files: Files
) -> Any:
    _pipeline(state, params["pipeline_id"])
    wanted = _display_name_filter(query.get("filter"))
    versions = state.versions[params["pipeline_id"]]
    found = [v for v in versions if wanted in (None, v.display_name)]
    page, token = _page(found, query, state.page_size_cap)
    return models.V2beta1ListPipelineVersionsResponse(
        pipeline_versions=page, total_size=len(found), next_page_token=token
    )


def _get_version(
    state: KfpBackendState, params: Params, query: Params, body: Any, files: Files
) -> Any:
    _pipeline(state, params["pipeline_id"])
    for version in state.versions[params["pipeline_id"]]:
        if version.pipeline_version_id == params["pipeline_version_id"]:
            return version
    raise ApiError(404, f"pipeline version {params['pipeline_version_id']} not found")


def _upload_version(
    state: KfpBackendState, params: Params, query: Params, body: Any, files: Files
) -> Any:
    pipeline_id = query.get("pipelineid", "")
    _pipeline(state, pipeline_id)
    name = query.get("name") or query.get("display_name")
    if not name:
        raise ApiError(400, "a pipeline version needs a name")
    if any(v.display_name == name for v in state.versions[pipeline_id]):
        raise ApiError(409, f"pipeline version name {name!r} already exists")
    version = models.V2beta1PipelineVersion(
        pipeline_id=pipeline_id,
        pipeline_version_id=state.new_id("version"),
        display_name=name,
        description=query.get("description", ""),
        created_at=CREATED_AT,
        pipeline_spec=_stored_spec(files["uploadfile"]),
    )
    state.versions[pipeline_id].append(version)
    return version


def _create_experiment(
    state: KfpBackendState, params: Params, query: Params, body: Any, files: Files
) -> Any:
    experiment = models.V2beta1Experiment(
        experiment_id=state.new_id("experiment"),
        display_name=body.display_name,
        created_at=CREATED_AT,
    )
    state.experiments[experiment.experiment_id] = experiment
    return experiment


def _list_experiments(
    state: KfpBackendState, params: Params, query: Params, body: Any, files: Files
) -> Any:
    wanted = _display_name_filter(query.get("filter"))
    found = [e for e in state.experiments.values() if wanted in (None, e.display_name)]
    page, token = _page(found, query, state.page_size_cap)
    return models.V2beta1ListExperimentsResponse(
        experiments=page, total_size=len(found), next_page_token=token
    )


def _create_run(
    state: KfpBackendState, params: Params, query: Params, body: Any, files: Files
) -> Any:
    reference = body.pipeline_version_reference
    if reference is None:
        raise ApiError(400, "a run needs a pipeline_version_reference")
    _get_version(
        state,
        {
            "pipeline_id": reference.pipeline_id,
            "pipeline_version_id": reference.pipeline_version_id,
        },
        {},
        None,
        {},
    )
    if body.experiment_id not in state.experiments:
        raise ApiError(404, f"experiment {body.experiment_id} not found")
    body.run_id = state.new_id("run")
    body.state = "PENDING"
    body.created_at = CREATED_AT
    state.runs[body.run_id] = body
    return body


def _get_run(state: KfpBackendState, params: Params, query: Params, body: Any, files: Files) -> Any:
    run = state.runs.get(params["run_id"])
    if run is None:
        raise ApiError(404, f"run {params['run_id']} not found")
    reads = state._run_reads[run.run_id] = state._run_reads.get(run.run_id, 0) + 1
    run.state = state.run_states[min(reads, len(state.run_states)) - 1]
    if run.state == "FAILED" and state.run_error:
        run.error = models.GoogleRpcStatus(code=2, message=state.run_error)
    return run


HANDLERS: dict[str, Handler] = {
    "healthz_service_get_healthz": _healthz,
    "pipeline_service_create_pipeline": _create_pipeline,
    "pipeline_service_list_pipelines": _list_pipelines,
    "pipeline_service_list_pipeline_versions": _list_versions,
    "pipeline_service_get_pipeline_version": _get_version,
    "upload_pipeline_version": _upload_version,
    "experiment_service_create_experiment": _create_experiment,
    "experiment_service_list_experiments": _list_experiments,
    "run_service_create_run": _create_run,
    "run_service_get_run": _get_run,
}


class _Response:
    """What kfp_server_api's deserializer reads: the raw JSON text."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in message.iter_parts()
    }


class _HttpHandler(BaseHTTPRequestHandler):
    state: KfpBackendState  # set on the subclass the server makes
    endpoints: list[Endpoint]

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        error = models.GoogleRpcStatus(
            code={400: 3, 404: 5, 409: 6}.get(status, 13), message=message
        )
        self._reply(status, to_json(error, "GoogleRpcStatus", "error"))

    def _serve(self) -> None:
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            endpoint, params = find_endpoint(self.endpoints, self.command, url.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            undeclared = sorted(set(query) - endpoint.query)
            if undeclared:
                raise ApiMismatch(f"{endpoint.operation} takes no query parameter {undeclared}")
            body, files = self._decode(endpoint, raw)
        except ApiMismatch as err:
            self.state.refusals.append(str(err))
            return self._error(404 if "not an endpoint" in str(err) else 400, str(err))
        self.state.requests.append(Request(endpoint.operation, query, body))
        handler = HANDLERS.get(endpoint.operation)
        if handler is None:
            return self._error(501, f"{endpoint.operation} is published but not served here")
        try:
            answer = handler(self.state, params, query, body, files)
        except ApiMismatch as err:
            self.state.refusals.append(str(err))
            return self._error(400, str(err))
        except ApiError as err:
            return self._error(err.status, str(err))
        self._reply(200, to_json(answer, endpoint.response_type or "", endpoint.operation))

    def _decode(self, endpoint: Endpoint, raw: bytes) -> tuple[Any, dict[str, bytes]]:
        content_type = self.headers.get("Content-Type", "")
        if endpoint.files:
            files = _multipart(content_type, raw)
            unknown = sorted(set(files) - endpoint.files)
            if unknown or not files:
                raise ApiMismatch(f"{endpoint.operation} takes the files {sorted(endpoint.files)}")
            return None, files
        if endpoint.body_type is None:
            if raw:
                raise ApiMismatch(f"{endpoint.operation} takes no body")
            return None, {}
        try:
            decoded = json.loads(raw)
        except ValueError as err:
            raise ApiMismatch(f"{endpoint.operation}: the body is not JSON: {err}") from err
        check_message(decoded, endpoint.body_type, endpoint.operation)
        model = kfp_server_api.ApiClient().deserialize(_Response(raw), endpoint.body_type)
        return model, {}

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve


class KfpApiServer:
    """Serves the API on 127.0.0.1:<free port> in a thread; use as a context manager."""

    def __init__(self) -> None:
        self.state = KfpBackendState()
        handler = type(
            "Handler", (_HttpHandler,), {"state": self.state, "endpoints": published_endpoints()}
        )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> KfpApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
