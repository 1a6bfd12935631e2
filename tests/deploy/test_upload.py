"""pipelines.upload through the real kfp.Client, against an API whose surface is kfp-server-api's.

The server (tests.deploy.kfp_api_server) takes its endpoints, parameters and message fields
from the generated kfp-server-api package that kfp.Client is built on, so these tests fail
when upload calls something the published API does not have, not only when the flow is wrong.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from landmarks.errors import InputError
from pipelines import upload
from tests.deploy.conftest import REPO, write_variant
from tests.deploy.kfp_api_server import KfpApiServer
from tests.support.net import free_port

NOW = dt.datetime(2026, 11, 25, 8, 15, 0, tzinfo=dt.UTC)
PLATFORM = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}}


def _upload(server: KfpApiServer, package: Path, version: str) -> upload.Uploaded:
    client = upload.connect(server.url)
    return upload.upload(client, upload.load_package(package), version=version, now=lambda: NOW)


def _version_names(server: KfpApiServer) -> list[str]:
    return server.state.version_names()


def test_first_upload_creates_the_pipeline_and_names_its_version_after_the_tag(
    kfp_api: KfpApiServer, compiled_pipeline: Path
) -> None:
    result = _upload(kfp_api, compiled_pipeline, "0.1.0-abc123")

    assert result.pipeline_created and not result.reused
    (pipeline,) = kfp_api.state.pipelines.values()
    assert pipeline.display_name == "landmark-recognition"
    # No version named after the pipeline: the only one carries the tag.
    assert _version_names(kfp_api) == ["0.1.0-abc123"]
    assert not kfp_api.state.calls("upload_pipeline")


def test_redeploying_the_same_pipeline_reuses_its_version(
    kfp_api: KfpApiServer, compiled_pipeline: Path
) -> None:
    first = _upload(kfp_api, compiled_pipeline, "0.1.0-abc123")
    again = _upload(kfp_api, compiled_pipeline, "0.1.0-abc123")

    assert again.reused and not again.pipeline_created
    assert again.version_id == first.version_id
    assert _version_names(kfp_api) == ["0.1.0-abc123"]
    assert len(kfp_api.state.calls("upload_pipeline_version")) == 1


def test_a_changed_pipeline_under_a_taken_name_gets_the_utc_time_appended(
    kfp_api: KfpApiServer, compiled_pipeline: Path, tmp_path: Path
) -> None:
    changed = write_variant(compiled_pipeline, tmp_path / "changed.yaml", description="edited")
    _upload(kfp_api, compiled_pipeline, "0.1.0-abc123-dirty")
    result = _upload(kfp_api, changed, "0.1.0-abc123-dirty")

    assert not result.reused
    assert result.version_name == "0.1.0-abc123-dirty-20261125-081500"
    assert _version_names(kfp_api) == ["0.1.0-abc123-dirty", "0.1.0-abc123-dirty-20261125-081500"]


def test_the_platform_spec_counts_when_comparing_versions(
    kfp_api: KfpApiServer, compiled_pipeline: Path, tmp_path: Path
) -> None:
    with_platform = write_variant(compiled_pipeline, tmp_path / "p.yaml", platform=PLATFORM)
    other = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {"x": {}}}}}}
    other_platform = write_variant(compiled_pipeline, tmp_path / "q.yaml", platform=other)

    _upload(kfp_api, with_platform, "1.0")
    assert _upload(kfp_api, with_platform, "1.0").reused
    assert not _upload(kfp_api, other_platform, "1.0").reused
    assert len(_version_names(kfp_api)) == 2


def test_version_names_are_collected_from_every_page_of_the_listing(
    kfp_api: KfpApiServer, compiled_pipeline: Path, tmp_path: Path
) -> None:
    # The fake pages at 2 versions, so the stamped name is only seen on the second page.
    for i, name in enumerate(["x", "a", "b", "x-20261125-081500"]):
        variant = write_variant(compiled_pipeline, tmp_path / f"v{i}.yaml", description=f"v{i}")
        _upload(kfp_api, variant, name)
    changed = write_variant(compiled_pipeline, tmp_path / "new.yaml", description="new")

    result = _upload(kfp_api, changed, "x")

    assert result.version_name == "x-20261125-081500-2"
    assert upload.version_name_for("y", {"x"}, NOW) == "y"


def test_cli_prints_the_ui_link_of_the_new_version(
    kfp_api: KfpApiServer, compiled_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ui = "https://kfp.example.org"
    code = upload.main(
        ["--host", kfp_api.url, "--ui-host", ui, "--package", str(compiled_pipeline),
         "--version", "0.1.0-abc123"]
    )  # fmt: skip

    assert code == 0
    (pipeline_id,) = kfp_api.state.pipelines
    (version,) = kfp_api.state.versions[pipeline_id]
    link = f"{ui}/#/pipelines/details/{pipeline_id}/version/{version.pipeline_version_id}"
    assert f"UI: {link}" in capsys.readouterr().out


def test_unreachable_api_fails_fast_with_the_port_forward_command(
    compiled_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code = upload.main(["--host", host, "--package", str(compiled_pipeline), "--version", "1"])

    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot reach the Kubeflow Pipelines API at {host}" in err
    assert "kubectl -n kubeflow port-forward svc/ml-pipeline 8888:8888" in err


def test_unknown_run_parameter_is_refused_before_the_api_is_called(
    kfp_api: KfpApiServer, compiled_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = upload.main(
        ["--host", kfp_api.url, "--package", str(compiled_pipeline), "--version", "1",
         "--run", "--param", "workerz=2"]
    )  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2
    assert "field 'workerz'" in err and "metadata" in err  # names it and lists the real ones
    assert kfp_api.state.requests == []


def test_a_run_without_a_required_parameter_is_refused_naming_it(
    kfp_api: KfpApiServer,
    compiled_pipeline: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The project's pipeline needs no parameter (it defaults to the embedded dataset):
    # make `metadata` required in a copy of it.
    docs = list(yaml.safe_load_all(compiled_pipeline.read_text()))
    metadata = docs[0]["root"]["inputDefinitions"]["parameters"]["metadata"]
    del metadata["defaultValue"], metadata["isOptional"]
    package = tmp_path / "needs-metadata.yaml"
    package.write_text(yaml.safe_dump_all(docs))
    code = upload.main(
        ["--host", kfp_api.url, "--package", str(package), "--version", "1",
         "--run", "--param", "seed=3"]
    )  # fmt: skip

    assert code == 2
    assert "a run needs a value for metadata" in capsys.readouterr().err
    assert kfp_api.state.requests == []


def test_run_parameters_are_typed_like_the_compiled_pipeline(compiled_pipeline: Path) -> None:
    parameters = upload.load_package(compiled_pipeline).parameters()

    typed = upload.parse_params(["metadata=gs://b/train.csv", "ingest_limit=50"], parameters)
    assert typed == {"metadata": "gs://b/train.csv", "ingest_limit": 50}
    with pytest.raises(InputError, match=r"field 'seed'.*NUMBER_INTEGER"):
        upload.parse_params(["seed=abc"], parameters)
    with pytest.raises(InputError, match="NAME=VALUE"):
        upload.parse_params(["seed"], parameters)


def test_a_run_of_the_uploaded_version_is_polled_to_success(
    kfp_api: KfpApiServer, compiled_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp_api.state.run_states = ["PENDING", "RUNNING", "SUCCEEDED"]
    code = upload.main(
        ["--host", kfp_api.url, "--package", str(compiled_pipeline), "--version", "1",
         "--run", "--param", "metadata=gs://b/train.csv", "--param", "ingest_limit=20",
         "--poll", "0.01"]
    )  # fmt: skip

    assert code == 0
    (create,) = kfp_api.state.calls("run_service_create_run")
    (pipeline_id,) = kfp_api.state.pipelines
    (version,) = kfp_api.state.versions[pipeline_id]
    reference = create.body.pipeline_version_reference
    assert (reference.pipeline_id, reference.pipeline_version_id) == (
        pipeline_id,
        version.pipeline_version_id,
    )
    assert create.body.runtime_config.parameters == {
        "metadata": "gs://b/train.csv",
        "ingest_limit": 20,
    }
    (experiment,) = kfp_api.state.experiments.values()
    assert experiment.display_name == "landmarks"
    assert create.body.experiment_id == experiment.experiment_id
    # Read until it ended: PENDING, RUNNING, SUCCEEDED.
    assert len(kfp_api.state.calls("run_service_get_run")) == 3
    out = capsys.readouterr().out
    assert f"run {create_run_id(kfp_api)}: SUCCEEDED" in out
    assert f"/#/runs/details/{create_run_id(kfp_api)}" in out


def create_run_id(server: KfpApiServer) -> str:
    (run_id,) = server.state.runs
    return run_id


def test_a_failed_run_exits_non_zero_with_the_backend_error(
    kfp_api: KfpApiServer, compiled_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp_api.state.run_states = ["RUNNING", "FAILED"]
    kfp_api.state.run_error = "TFJob landmarks-train-1 failed: worker-1 exited 1"
    code = upload.main(
        ["--host", kfp_api.url, "--package", str(compiled_pipeline), "--version", "1",
         "--run", "--param", "metadata=x.csv", "--poll", "0.01"]
    )  # fmt: skip

    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED" in captured.out
    assert "worker-1 exited 1" in captured.err


def test_a_run_that_outlasts_the_wait_fails_naming_its_state(
    kfp_api: KfpApiServer, compiled_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp_api.state.run_states = ["RUNNING"]
    code = upload.main(
        ["--host", kfp_api.url, "--package", str(compiled_pipeline), "--version", "1",
         "--run", "--wait", "0.2", "--poll", "0.05"]
    )  # fmt: skip

    assert code == 2
    (run_id,) = kfp_api.state.runs
    assert f"run {run_id} still RUNNING after 0 s" in capsys.readouterr().err


def test_a_cancelled_run_exits_non_zero_naming_its_state(
    kfp_api: KfpApiServer, compiled_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp_api.state.run_states = ["RUNNING", "CANCELED"]
    code = upload.main(
        ["--host", kfp_api.url, "--package", str(compiled_pipeline), "--version", "1",
         "--run", "--wait", "0.2", "--poll", "0.05"]
    )  # fmt: skip

    assert code == 1
    (run_id,) = kfp_api.state.runs
    assert f"run {run_id}: CANCELED" in capsys.readouterr().out


def test_cli_compiles_with_the_configured_images_and_names_the_version_after_the_tag(
    kfp_api: KfpApiServer, tmp_path: Path
) -> None:
    # A fresh process: the tag comes from the environment, as under `make deploy`.
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LANDMARKS_REGISTRY": "registry.example.org/team",
        "LANDMARKS_IMAGE_TAG": "7.7.7-test",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.upload", "--host", kfp_api.url],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert "uploaded landmark-recognition version 7.7.7-test" in proc.stdout
    (versions,) = kfp_api.state.versions.values()
    (version,) = versions
    # With a platform spec, the API nests both documents.
    spec = version.pipeline_spec.get("pipeline_spec", version.pipeline_spec)
    executors = spec["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    # The launchers and data steps run the component image; evaluate loads Keras models.
    assert images == {
        "registry.example.org/team/landmarks-component:7.7.7-test",
        "registry.example.org/team/landmarks-trainer-cpu:7.7.7-test",
    }
    compiled = next(yaml.safe_load_all((tmp_path / "build" / "pipeline.yaml").read_text()))
    assert compiled["pipelineInfo"]["name"] == "landmark-recognition"
