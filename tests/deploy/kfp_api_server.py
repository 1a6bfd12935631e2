"""A fake Kubeflow Pipelines API server: the few v2beta1 REST endpoints `pipelines.upload` uses.

A real KFP backend (MySQL, Argo, object store) cannot run here, so this HTTP server on
127.0.0.1 answers like one for those endpoints, with JSON shaped after `kfp_server_api`'s
models, so the real `kfp.Client` talks to it unchanged. It keeps pipelines, versions,
experiments and runs in memory, records every request, refuses a duplicate version name
with 409 as the backend does, pages version lists, and moves each run through the states
in `run_states`, one per GET.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

CREATED_AT = "2026-11-25T08:00:00Z"
API = "/apis/v2beta1"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any = None


@dataclass
class FakeKfpState:
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    # States a run reports on successive GETs; the last one sticks.
    run_states: list[str] = field(default_factory=lambda: ["RUNNING", "SUCCEEDED"])
    run_error: str | None = None
    page_size_cap: int = 2  # small, so clients must follow next_page_token
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _run_polls: dict[str, int] = field(default_factory=dict)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}"

    def calls(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]


def _matches(item: dict[str, Any], filter_json: str | None) -> bool:
    if not filter_json:
        return True
    for predicate in json.loads(filter_json).get("predicates", []):
        if predicate.get("operation") not in ("EQUALS", 1):
            raise ValueError(f"fake supports EQUALS only, got {predicate}")
        value = predicate.get("stringValue", predicate.get("string_value"))
        if item.get(predicate["key"]) != value:
            return False
    return True


def _stored_spec(package: bytes) -> Any:
    docs = [doc for doc in yaml.safe_load_all(package) if doc]
    if len(docs) > 1:
        return {"pipeline_spec": docs[0], "platform_spec": docs[1]}
    return docs[0]


class _Handler(BaseHTTPRequestHandler):
    state: FakeKfpState  # set on the subclass the server makes

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        self._reply(404, {"code": 5, "message": f"not found: {self.path}"})

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _record(self, body: Any = None) -> tuple[str, dict[str, str]]:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.state.requests.append(Request(self.command, url.path, query, body))
        return url.path, query

    def do_GET(self) -> None:
        path, query = self._record()
        state = self.state
        if path == f"{API}/healthz":
            return self._reply(200, {"multi_user": False})
        if path == f"{API}/pipelines":
            found = [p for p in state.pipelines.values() if _matches(p, query.get("filter"))]
            return self._reply(200, {"pipelines": found, "total_size": len(found)})
        if m := re.fullmatch(rf"{API}/pipelines/([^/]+)/versions", path):
            if m[1] not in state.pipelines:
                return self._not_found()
            found = [v for v in state.versions[m[1]] if _matches(v, query.get("filter"))]
            size = min(int(query.get("page_size") or 10), state.page_size_cap)
            start = int(query.get("page_token") or 0)
            page = found[start : start + size]
            token = str(start + size) if start + size < len(found) else ""
            return self._reply(
                200,
                {"pipeline_versions": page, "total_size": len(found), "next_page_token": token},
            )
        if m := re.fullmatch(rf"{API}/pipelines/([^/]+)/versions/([^/]+)", path):
            for version in state.versions.get(m[1], []):
                if version["pipeline_version_id"] == m[2]:
                    return self._reply(200, version)
            return self._not_found()
        if path == f"{API}/experiments":
            found = [e for e in state.experiments.values() if _matches(e, query.get("filter"))]
            return self._reply(200, {"experiments": found, "total_size": len(found)})
        if m := re.fullmatch(rf"{API}/runs/([^/]+)", path):
            run = state.runs.get(m[1])
            if run is None:
                return self._not_found()
            polls = state._run_polls[m[1]] = state._run_polls.get(m[1], 0) + 1
            run["state"] = state.run_states[min(polls, len(state.run_states)) - 1]
            if run["state"] == "FAILED" and state.run_error:
                run["error"] = {"code": 2, "message": state.run_error}
            return self._reply(200, run)
        return self._not_found()

    def do_POST(self) -> None:
        raw = self._read_body()
        ctype = self.headers.get("Content-Type", "")
        body: Any = json.loads(raw) if ctype.startswith("application/json") and raw else raw
        path, query = self._record(body)
        state = self.state
        if path == f"{API}/pipelines":
            pipeline_id = state.new_id("pipeline")
            pipeline = {
                "pipeline_id": pipeline_id,
                "display_name": body.get("display_name"),
                "description": body.get("description", ""),
                "created_at": CREATED_AT,
            }
            state.pipelines[pipeline_id] = pipeline
            state.versions[pipeline_id] = []
            return self._reply(200, pipeline)
        if path == f"{API}/pipelines/upload_version":
            pipeline_id = query.get("pipelineid", "")
            if pipeline_id not in state.pipelines:
                return self._not_found()
            name = query.get("name") or query.get("display_name")
            if any(v["display_name"] == name for v in state.versions[pipeline_id]):
                return self._reply(
                    409,
                    {"code": 6, "message": f"pipeline version name {name!r} already exists"},
                )
            version = {
                "pipeline_id": pipeline_id,
                "pipeline_version_id": state.new_id("version"),
                "display_name": name,
                "description": query.get("description", ""),
                "created_at": CREATED_AT,
                "pipeline_spec": _stored_spec(_multipart_file(ctype, raw, "uploadfile")),
            }
            state.versions[pipeline_id].append(version)
            return self._reply(200, version)
        if path == f"{API}/experiments":
            experiment_id = state.new_id("experiment")
            experiment = {
                "experiment_id": experiment_id,
                "display_name": body.get("display_name"),
                "created_at": CREATED_AT,
            }
            state.experiments[experiment_id] = experiment
            return self._reply(200, experiment)
        if path == f"{API}/runs":
            run_id = state.new_id("run")
            run = {**body, "run_id": run_id, "state": "PENDING", "created_at": CREATED_AT}
            state.runs[run_id] = run
            return self._reply(200, run)
        return self._not_found()


def _multipart_file(content_type: str, body: bytes, name: str) -> bytes:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            return part.get_payload(decode=True)
    raise ValueError(f"no multipart field {name!r}")


class FakeKfpServer:
    """Serves the fake on 127.0.0.1:<free port> in a thread; use as a context manager."""

    def __init__(self) -> None:
        self.state = FakeKfpState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeKfpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
