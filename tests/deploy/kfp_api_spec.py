"""The KFP REST API as kfp-server-api publishes it: its endpoints, parameters and message shapes.

`kfp.Client` is a thin layer over the generated `kfp_server_api` package, which is built from
the backend's OpenAPI definitions and pinned with kfp (same version). Everything the test
server knows about the API's surface comes from there, read when the tests run: each
`*_with_http_info` method of the generated service classes names its path, HTTP method,
query parameters, upload files, body message and response message, and each generated model
names its JSON fields and their types. So a client call that the published API does not have,
a query parameter or body field it does not declare, or a field of the wrong type, fails the
test instead of passing against a hand-written stand-in that agrees with whatever we wrote.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from dataclasses import dataclass
from typing import Any

import kfp_server_api
from kfp_server_api import models

API_VERSION = kfp_server_api.__version__

_ENDPOINT = re.compile(r"'(/apis/[^']+)', '(GET|POST|PUT|PATCH|DELETE)'")
_QUERY = re.compile(r"query_params\.append\(\('(\w+)'")
_FILE = re.compile(r"local_var_files\['(\w+)'\]")
_BODY = re.compile(r"body_params = local_var_params\['(\w+)'\]")
_RESPONSE = re.compile(r"response_type='(\w+)'")
_PATH_PARAM = re.compile(r"\{(\w+)\}")


class ApiMismatch(ValueError):
    """A request or response that the published API does not describe."""


@dataclass(frozen=True)
class Endpoint:
    operation: str  # the generated method's name, e.g. pipeline_service_create_pipeline
    method: str
    path: str  # with {placeholders}
    query: frozenset[str]
    files: frozenset[str]
    body_type: str | None
    response_type: str | None

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters, if this endpoint serves `method path`."""
        template, actual = self.path.strip("/").split("/"), path.strip("/").split("/")
        if method != self.method or len(template) != len(actual):
            return None
        params = {}
        for expected, segment in zip(template, actual, strict=True):
            if placeholder := _PATH_PARAM.fullmatch(expected):
                params[placeholder[1]] = segment
            elif expected != segment:
                return None
        return params


def _endpoint(operation: str, source: str) -> Endpoint | None:
    found = _ENDPOINT.search(source)
    if found is None:
        return None
    body_type = None
    if body := _BODY.search(source):
        typed = re.search(rf":type {body[1]}: (\w+)", source)
        if typed is None:
            raise ApiMismatch(f"{operation}: no type for its body parameter {body[1]!r}")
        body_type = typed[1]
    response = _RESPONSE.search(source)
    return Endpoint(
        operation=operation,
        method=found[2],
        path=found[1],
        query=frozenset(_QUERY.findall(source)),
        files=frozenset(_FILE.findall(source)),
        body_type=body_type,
        response_type=response[1] if response else None,
    )


def published_endpoints() -> list[Endpoint]:
    """Every endpoint of every generated service class of kfp-server-api."""
    endpoints = []
    for _, service in inspect.getmembers(kfp_server_api.api, inspect.isclass):
        for name, method in inspect.getmembers(service, inspect.isfunction):
            if name.endswith("_with_http_info"):
                endpoint = _endpoint(
                    name.removesuffix("_with_http_info"), inspect.getsource(method)
                )
                if endpoint is not None:
                    endpoints.append(endpoint)
    if not endpoints:
        raise ApiMismatch(f"no endpoint found in kfp-server-api {API_VERSION}: did it change form?")
    # Literal segments win over placeholders: /pipelines/upload is not /pipelines/{pipeline_id}.
    return sorted(endpoints, key=lambda e: len(_PATH_PARAM.findall(e.path)))


def find_endpoint(
    endpoints: list[Endpoint], method: str, path: str
) -> tuple[Endpoint, dict[str, str]]:
    for endpoint in endpoints:
        params = endpoint.match(method, path)
        if params is not None:
            return endpoint, params
    raise ApiMismatch(f"{method} {path} is not an endpoint of kfp-server-api {API_VERSION}")


def _model(type_name: str) -> type:
    model = getattr(models, type_name, None)
    if model is None:
        raise ApiMismatch(f"kfp-server-api {API_VERSION} has no model {type_name}")
    return model


def check_message(value: Any, type_name: str, where: str) -> None:
    """Raise ApiMismatch unless `value` (decoded JSON) is a valid `type_name` of the API."""
    if value is None or type_name == "object":
        return
    if list_of := re.fullmatch(r"list\[(.+)\]", type_name):
        if not isinstance(value, list):
            raise ApiMismatch(f"{where}: expected a list, got {value!r}")
        for i, item in enumerate(value):
            check_message(item, list_of[1], f"{where}[{i}]")
        return
    if dict_of := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        if not isinstance(value, dict):
            raise ApiMismatch(f"{where}: expected an object, got {value!r}")
        for key, item in value.items():
            check_message(item, dict_of[1], f"{where}.{key}")
        return
    scalars: dict[str, tuple[type, ...]] = {
        "str": (str,),
        "int": (int, str),  # int64 travels as a JSON string
        "float": (int, float),
        "bool": (bool,),
        "datetime": (str,),
    }
    if type_name in scalars:
        if not isinstance(value, scalars[type_name]) or (
            type_name == "int" and isinstance(value, bool)
        ):
            raise ApiMismatch(f"{where}: expected {type_name}, got {value!r}")
        if type_name == "datetime":
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return
    model = _model(type_name)
    allowed = getattr(model, "allowable_values", None)
    if allowed is not None and not model.openapi_types:  # an enum
        if value not in allowed:
            raise ApiMismatch(f"{where}: {value!r} is not a {type_name} ({', '.join(allowed)})")
        return
    if not isinstance(value, dict):
        raise ApiMismatch(f"{where}: expected a {type_name} object, got {value!r}")
    fields = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, item in value.items():
        if key not in fields:
            raise ApiMismatch(
                f"{where}: {type_name} has no field {key!r} (its fields: {', '.join(fields)})"
            )
        check_message(item, model.openapi_types[fields[key]], f"{where}.{key}")


_SERIALIZER = kfp_server_api.ApiClient()


def to_json(message: Any, type_name: str, where: str) -> Any:
    """A generated model instance as the API's JSON, refused unless it is a `type_name`."""
    if type(message).__name__ != type_name:
        raise ApiMismatch(f"{where}: answers {type_name}, not {type(message).__name__}")
    return _SERIALIZER.sanitize_for_serialization(message)
