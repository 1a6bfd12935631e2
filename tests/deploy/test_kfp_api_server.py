"""The upload tests' KFP API refuses what kfp-server-api does not publish."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import kfp_server_api
import pytest

from tests.deploy.kfp_api_server import HANDLERS, KfpApiServer
from tests.deploy.kfp_api_spec import ApiMismatch, check_message, published_endpoints

API = "/apis/v2beta1"


def _send(server: KfpApiServer, method: str, path: str, body: object = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def server() -> Iterator[KfpApiServer]:
    with KfpApiServer() as running:
        yield running


def test_every_served_operation_is_one_kfp_server_api_publishes() -> None:
    published = {e.operation for e in published_endpoints()}
    assert set(HANDLERS) <= published, set(HANDLERS) - published
    # The routes are read from the package, not listed here: it has far more than we serve.
    assert len(published) > 2 * len(HANDLERS)


def test_a_body_field_the_model_lacks_is_refused_naming_it(server: KfpApiServer) -> None:
    status, answer = _send(
        server, "POST", f"{API}/pipelines", {"display_name": "p", "descr": "typo"}
    )

    assert status == 400
    assert "V2beta1Pipeline has no field 'descr'" in answer["message"]
    assert server.state.pipelines == {} and len(server.state.refusals) == 1


def test_a_path_the_api_does_not_have_is_refused(server: KfpApiServer) -> None:
    status, answer = _send(server, "POST", f"{API}/pipelines/p-1/upload_version", {})

    assert status == 404
    assert f"not an endpoint of kfp-server-api {kfp_server_api.__version__}" in answer["message"]


def test_a_query_parameter_the_endpoint_does_not_declare_is_refused(server: KfpApiServer) -> None:
    status, answer = _send(server, "GET", f"{API}/pipelines?pageSize=5")

    assert status == 400
    assert "takes no query parameter ['pageSize']" in answer["message"]


def test_a_field_of_the_wrong_type_or_enum_value_is_refused() -> None:
    with pytest.raises(ApiMismatch, match=r"run\.runtime_config: expected a V2beta1RuntimeConfig"):
        check_message({"runtime_config": "x"}, "V2beta1Run", "run")
    with pytest.raises(ApiMismatch, match=r"'DONE' is not a V2beta1RuntimeState"):
        check_message({"state": "DONE"}, "V2beta1Run", "run")
    check_message({"state": "SUCCEEDED", "runtime_config": {"parameters": {}}}, "V2beta1Run", "r")
