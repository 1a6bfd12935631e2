"""Compile the pipeline and upload it to Kubeflow Pipelines as a new version; print the UI link.

    python -m pipelines.upload --host http://localhost:8888 [--ui-host http://localhost:8080]
    python -m pipelines.upload --host ... --run --param metadata=gs://bucket/train.csv --wait 3600

The version is named after the image tag (`landmarks.config.image_tag()`, e.g.
`0.1.0-3f2a9c1d4b5e`), so a version in the UI says which images and which commit it runs.
Deploying the same commit again reuses its version when the compiled spec is identical;
a different spec under a name already taken (a `-dirty` tree, another registry) gets the
UTC time appended, so no upload ever fails on, or overwrites, an existing version.

`make deploy` runs this after the chart; `make kind-test` adds `--run`, which starts a run
of the uploaded version, waits for it (kfp.Client.wait_for_run_completion) and exits non-zero
unless it succeeded.

Every API call goes through kfp.Client. Two things it has no call for are done here: a
pipeline created without a version (the upload call would name its first version after the
pipeline, not the tag), through the generated API the client exposes, and the walk over
pages of a version listing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from landmarks import config
from landmarks.errors import InputError, LandmarksError

log = logging.getLogger("pipelines.upload")

DEFAULT_PACKAGE = Path("build/pipeline.yaml")
HEALTHZ_PATH = "/apis/v2beta1/healthz"
PORT_FORWARD_HINT = (
    "port-forward the API (kubectl -n kubeflow port-forward svc/ml-pipeline 8888:8888) "
    "and pass --host http://localhost:8888"
)
# Compiled parameter types -> how a `--param k=v` string becomes a value.
_PARAM_PARSERS: dict[str, Callable[[str], Any]] = {
    "STRING": str,
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "BOOLEAN": lambda text: {"true": True, "false": False}[text.lower()],
    "LIST": json.loads,
    "STRUCT": json.loads,
}


@dataclass(frozen=True)
class Package:
    """A compiled pipeline: its spec and (when kfp-kubernetes is used) its platform spec."""

    path: Path
    pipeline_spec: dict[str, Any]
    platform_spec: dict[str, Any] | None

    @property
    def name(self) -> str:
        return self.pipeline_spec["pipelineInfo"]["name"]

    def required(self) -> set[str]:
        """Parameters a run must be given: no default in the compiled pipeline."""
        inputs = self.pipeline_spec.get("root", {}).get("inputDefinitions", {})
        return {
            name
            for name, spec in inputs.get("parameters", {}).items()
            if "defaultValue" not in spec and not spec.get("isOptional")
        }

    def parameters(self) -> dict[str, str]:
        """Pipeline parameter names and their compiled types (STRING, NUMBER_INTEGER, ...)."""
        inputs = self.pipeline_spec.get("root", {}).get("inputDefinitions", {})
        return {
            name: spec.get("parameterType", "STRING")
            for name, spec in inputs.get("parameters", {}).items()
        }


@dataclass(frozen=True)
class Uploaded:
    pipeline_id: str
    version_id: str
    version_name: str
    pipeline_created: bool
    reused: bool


def load_package(path: Path) -> Package:
    try:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    except (OSError, yaml.YAMLError) as err:
        raise InputError(f"cannot read the compiled pipeline: {err}", file=str(path)) from err
    if not docs or "pipelineInfo" not in docs[0]:
        raise InputError("not a compiled KFP pipeline (no pipelineInfo)", file=str(path))
    return Package(path, docs[0], docs[1] if len(docs) > 1 else None)


def compile_package(output: Path) -> Path:
    """Compile the pipeline in cluster mode (training steps launch TFJobs)."""
    from pipelines.compile import compile_pipeline

    return compile_pipeline(output, mode="cluster")


def check_reachable(host: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after kfp.Client's 5 retries 5 s apart, when nothing answers.

    Any HTTP answer counts as reachable: behind IAP or Dex, healthz may answer 302 or 401
    and kfp.Client deals with that itself.
    """
    url = host.rstrip("/") + HEALTHZ_PATH
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise LandmarksError(
            f"cannot reach the Kubeflow Pipelines API at {host} (GET {HEALTHZ_PATH}: {reason}): "
            f"{PORT_FORWARD_HINT}"
        ) from err


def connect(host: str, ui_host: str | None = None):  # -> kfp.Client
    check_reachable(host)
    import warnings

    import kfp

    with warnings.catch_warnings():
        # "This client only works with Kubeflow Pipeline v2.0.0-beta.2 and later": it does.
        warnings.simplefilter("ignore", FutureWarning)
        return kfp.Client(host=host, ui_host=ui_host or host)


def ui_link(ui_host: str, pipeline_id: str, version_id: str | None = None) -> str:
    """The KFP UI page of a pipeline, or of one of its versions."""
    base = ui_host.rstrip("/")
    if not base.startswith(("http://", "https://")):
        base = f"http://{base}"
    link = f"{base}/#/pipelines/details/{pipeline_id}"
    return f"{link}/version/{version_id}" if version_id else link


def run_link(ui_host: str, run_id: str) -> str:
    base = ui_host.rstrip("/")
    if not base.startswith(("http://", "https://")):
        base = f"http://{base}"
    return f"{base}/#/runs/details/{run_id}"


def version_name_for(wanted: str, taken: Iterable[str], now: dt.datetime) -> str:
    """`wanted`, or `wanted-YYYYmmdd-HHMMSS` (UTC) when a version already has that name."""
    names = set(taken)
    if wanted not in names:
        return wanted
    stamped = f"{wanted}-{now.astimezone(dt.UTC):%Y%m%d-%H%M%S}"
    suffix = 1
    candidate = stamped
    while candidate in names:
        suffix += 1
        candidate = f"{stamped}-{suffix}"
    return candidate


def parse_params(pairs: Iterable[str], parameters: Mapping[str, str]) -> dict[str, Any]:
    """`k=v` strings -> run arguments typed like the compiled pipeline's parameters."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise InputError(f"expected NAME=VALUE, got {pair!r}", field="--param")
        if name not in parameters:
            known = ", ".join(sorted(parameters)) or "none"
            raise InputError(
                f"the pipeline has no parameter {name!r} (its parameters: {known})", field=name
            )
        kind = parameters[name]
        try:
            out[name] = _PARAM_PARSERS.get(kind, str)(text)
        except (ValueError, KeyError) as err:
            raise InputError(f"{text!r} is not a valid {kind} value", field=name) from err
    return out


def _filter(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "stringValue": value}]})


def _spec_parts(stored: Any) -> tuple[Any, Any]:
    # The API returns a version's spec alone, or, when the package had a platform spec,
    # both under `pipeline_spec` and `platform_spec`.
    if isinstance(stored, Mapping) and "pipeline_spec" in stored:
        return stored.get("pipeline_spec"), stored.get("platform_spec")
    return stored, None


def _versions(client: Any, pipeline_id: str, name: str | None = None) -> Iterator[Any]:
    """Every version of the pipeline (named `name`, if given), across the listing's pages."""
    token = ""
    while True:
        page = client.list_pipeline_versions(
            pipeline_id,
            page_token=token,
            page_size=100,
            filter=_filter("display_name", name) if name else None,
        )
        for version in page.pipeline_versions or []:
            if name is None or version.display_name == name:
                yield version
        token = page.next_page_token or ""
        if not token:
            return


def upload(
    client: Any,
    package: Package,
    *,
    version: str,
    pipeline_name: str | None = None,
    description: str = "",
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Uploaded:
    """Upload `package` as version `version` of its pipeline, creating the pipeline if needed."""
    name = pipeline_name or package.name
    pipeline_id = client.get_pipeline_id(name)
    created = False
    if pipeline_id is None:
        # Created empty, so its first version carries the tag like every later one
        # (upload_pipeline would name the first version after the pipeline).
        models = client.api_models
        pipeline = client.pipelines.pipeline_service_create_pipeline(
            pipeline=models.V2beta1Pipeline(display_name=name, description=description)
        )
        pipeline_id = pipeline.pipeline_id
        created = True
        log.info("created pipeline %s (%s)", name, pipeline_id)
    else:
        same_name = list(_versions(client, pipeline_id, version))
        for existing in same_name:
            stored = client.get_pipeline_version(pipeline_id, existing.pipeline_version_id)
            if _spec_parts(stored.pipeline_spec) == (package.pipeline_spec, package.platform_spec):
                log.info("version %s already holds this exact pipeline: reusing it", version)
                return Uploaded(pipeline_id, existing.pipeline_version_id, version, False, True)
        if same_name:
            taken = (v.display_name for v in _versions(client, pipeline_id))
            version = version_name_for(version, taken, now())
            log.info("a different pipeline already has that version name: uploading as %s", version)
    uploaded = client.upload_pipeline_version(
        str(package.path),
        pipeline_version_name=version,
        pipeline_id=pipeline_id,
        description=description or None,
    )
    return Uploaded(pipeline_id, uploaded.pipeline_version_id, version, created, False)


def run_version(
    client: Any,
    uploaded: Uploaded,
    *,
    params: Mapping[str, Any],
    experiment: str,
    run_name: str,
    timeout_s: float,
    poll_s: float = 15.0,
) -> Any:
    """Start a run of the uploaded version and wait for its end; returns the run."""
    experiment_id = client.create_experiment(name=experiment).experiment_id
    run = client.run_pipeline(
        experiment_id=experiment_id,
        job_name=run_name,
        params=dict(params),
        pipeline_id=uploaded.pipeline_id,
        version_id=uploaded.version_id,
    )
    log.info("run %s started; waiting up to %.0f s for it to end", run.run_id, timeout_s)
    try:
        return client.wait_for_run_completion(run.run_id, timeout=timeout_s, sleep_duration=poll_s)
    except TimeoutError:
        current = client.get_run(run.run_id)
    state = str(current.state or "PENDING").upper()
    if state in ("CANCELING", "CANCELED"):
        # kfp's wait ends on succeeded, failed, skipped and error only, so a cancelled run
        # is only seen as such here, after the wait.
        return current
    raise LandmarksError(
        f"run {run.run_id} still {state} after {timeout_s:.0f} s; it keeps running "
        "in the cluster (see its page in the UI)"
    )


def _description() -> str:
    images = ", ".join(f"{role}={config.image(role)}" for role in config.IMAGE_ROLES)
    return f"landmarks {config.__version__}; images: {images}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.upload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", required=True, help="KFP API endpoint, e.g. http://localhost:8888"
    )
    parser.add_argument("--ui-host", help="KFP UI base URL for the printed links (default: --host)")
    parser.add_argument(
        "--package",
        type=Path,
        help="an already compiled pipeline (default: compile to build/pipeline.yaml)",
    )
    parser.add_argument("--pipeline-name", help="default: the compiled pipeline's name")
    parser.add_argument("--version", help="version name (default: the image tag)")
    parser.add_argument("--run", action="store_true", help="start a run of the version and wait")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="run argument"
    )
    parser.add_argument("--experiment", default="landmarks", help="experiment of the run")
    parser.add_argument("--run-name", help="default: <pipeline> <version> <UTC time>")
    parser.add_argument("--wait", type=float, default=3600, help="seconds to wait for the run")
    parser.add_argument("--poll", type=float, default=15, help="seconds between run polls")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ui_host = args.ui_host or args.host
    try:
        package = load_package(args.package or compile_package(DEFAULT_PACKAGE))
        params = parse_params(args.param, package.parameters())
        missing = sorted(package.required() - set(params)) if args.run else []
        if missing:
            raise InputError(
                f"a run needs a value for {', '.join(missing)} (--param NAME=VALUE)",
                field=missing[0],
            )
        client = connect(args.host, ui_host)
        uploaded = upload(
            client,
            package,
            version=args.version or config.image_tag(),
            pipeline_name=args.pipeline_name,
            description=_description(),
        )
        verb = "reused" if uploaded.reused else "uploaded"
        print(f"{verb} {args.pipeline_name or package.name} version {uploaded.version_name}")
        print(f"UI: {ui_link(ui_host, uploaded.pipeline_id, uploaded.version_id)}")
        if not args.run:
            return 0
        now = dt.datetime.now(dt.UTC)
        final = run_version(
            client,
            uploaded,
            params=params,
            experiment=args.experiment,
            run_name=args.run_name or f"{package.name} {uploaded.version_name} {now:%Y%m%d-%H%M%S}",
            timeout_s=args.wait,
            poll_s=args.poll,
        )
    except LandmarksError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    state = str(final.state).upper()
    print(f"run {final.run_id}: {state}")
    print(f"UI: {run_link(ui_host, final.run_id)}")
    if state != "SUCCEEDED":
        error = getattr(final, "error", None)
        if error is not None and getattr(error, "message", None):
            print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
