"""The one place a TFJob (kubeflow.org/v1, training-operator v1.9) is built.

The cluster launcher submits `TFJobSpec.to_manifest()`; the local executor
(`landmarks.tfjob.local_executor`) runs the very same dict as processes. Facts of the operator's
contract this module encodes:

- TF_CONFIG is injected only into the container named `tensorflow`, and the cluster
  addresses use its port named `tfjob-port` (2222 by default);
- run-policy fields (`cleanPodPolicy`, `ttlSecondsAfterFinished`,
  `activeDeadlineSeconds`, `backoffLimit`) belong under `spec.runPolicy`: at spec level
  the CRD's structural schema silently prunes them;
- `restartPolicy: ExitCode` restarts a replica whose exit code is 128 or above and fails
  the job on 1..127, which is what the trainer's exit codes are made for;
- GPUs are requested in `limits` as `nvidia.com/gpu`.

Every replica also gets a memory-backed `/dev/shm` (`shm_size`): container runtimes give
64 MiB, too little for NCCL's shared-memory transport between the GPUs of one pod.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from landmarks.config import TRAINER_IMAGE
from landmarks.errors import InputError
from landmarks.storage import MINIO_SCHEME, S3_SCHEME, scheme
from landmarks.storage import s3 as s3_store

API_VERSION = "kubeflow.org/v1"
KIND = "TFJob"
CONTAINER_NAME = "tensorflow"  # the only container the operator gives TF_CONFIG
PORT_NAME = "tfjob-port"
DEFAULT_PORT = 2222
GPU_RESOURCE = "nvidia.com/gpu"
RESTART_POLICIES = ("ExitCode", "OnFailure", "Always", "Never")
CLEAN_POD_POLICIES = ("Running", "All", "None")
SUCCESS_POLICIES = ("", "AllWorkers")
# Kubernetes names TFJob pods and services `<job>-worker-<i>`; the operator's webhook
# requires a DNS-1035 label for the job name.
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_NAME = 63 - len("-worker-99")
# Every trainer replica's environment: logs unbuffered (they are streamed while training
# runs) and tf-keras instead of Keras 3 (see landmarks.train).
TRAINER_ENV = {"PYTHONUNBUFFERED": "1", "TF_USE_LEGACY_KERAS": "1"}
# /dev/shm of every replica: an emptyDir in memory. NVIDIA runs its TensorFlow containers
# with --shm-size=1g; what is written there counts against the container's memory limit, so
# the size is a ceiling, not a reservation. TFJobSpec(shm_size=None) leaves it out.
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"
DEFAULT_SHM_SIZE = "1Gi"
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


def dns1035_name(text: str, max_length: int = _MAX_NAME) -> str:
    """`text` as a DNS-1035 label of at most `max_length` characters (a valid job name).

    Lower-cased; runs of anything but letters, digits and '-' become one '-'; `tj-` is put
    in front when it would not start with a letter.
    """
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")
    if not name or not name[0].isalpha():
        name = f"tj-{name}"
    return name[:max_length].rstrip("-")


@dataclass
class TFJobSpec:
    """A distributed training job: Worker replicas and an optional Chief.

    Every replica runs the same container; the chief (or worker 0 without one) keeps the
    outputs. `command` should start with `python` so the local executor can run it.
    """

    name: str
    image: str = TRAINER_IMAGE
    command: list[str] = field(default_factory=lambda: ["python", "-m", "landmarks.train"])
    args: list[str] = field(default_factory=list)
    namespace: str = "default"
    workers: int = 1
    chief: bool = False
    gpus_per_worker: int = 0
    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] | None = None
    service_account: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    image_pull_policy: str | None = None
    shm_size: str | None = DEFAULT_SHM_SIZE
    restart_policy: str = "ExitCode"
    # Remove pods still running when the job ends (the operator's default keeps them).
    clean_pod_policy: str = "Running"
    ttl_seconds_after_finished: int | None = None
    active_deadline_seconds: int | None = None
    backoff_limit: int | None = 3
    success_policy: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    port: int = DEFAULT_PORT

    def validate(self) -> TFJobSpec:
        """Raise InputError on what the operator's webhook or the CRD would refuse."""

        def bad(name: str, why: str) -> InputError:
            return InputError(f"{why} (got {getattr(self, name)!r})", field=name)

        if not _DNS1035.match(self.name) or len(self.name) > _MAX_NAME:
            raise bad(
                "name",
                f"must be a DNS-1035 label of at most {_MAX_NAME} characters: lower-case "
                "letters, digits and '-', starting with a letter",
            )
        if not self.image:
            raise bad("image", "a container image is required")
        if not self.command:
            raise bad("command", "a command is required (e.g. python -m landmarks.train)")
        if self.workers < 0 or (self.workers == 0 and not self.chief):
            raise bad("workers", "needs at least one worker, or a chief")
        if self.gpus_per_worker < 0:
            raise bad("gpus_per_worker", "must not be negative")
        if self.restart_policy not in RESTART_POLICIES:
            raise bad("restart_policy", f"must be one of {', '.join(RESTART_POLICIES)}")
        if self.clean_pod_policy not in CLEAN_POD_POLICIES:
            raise bad("clean_pod_policy", f"must be one of {', '.join(CLEAN_POD_POLICIES)}")
        if self.success_policy not in SUCCESS_POLICIES:
            raise bad("success_policy", "must be empty (chief / worker 0) or AllWorkers")
        for name in ("ttl_seconds_after_finished", "active_deadline_seconds", "backoff_limit"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise bad(name, "must not be negative")
        if not 0 < self.port < 65536:
            raise bad("port", "must be a TCP port")
        if self.shm_size is not None and not _QUANTITY.match(self.shm_size):
            raise bad("shm_size", "must be a Kubernetes quantity such as 1Gi or 512Mi")
        return self

    @property
    def replicas(self) -> int:
        return self.workers + (1 if self.chief else 0)

    def _container(self) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": CONTAINER_NAME,
            "image": self.image,
            "command": list(self.command),
            "args": list(self.args),
            "ports": [{"name": PORT_NAME, "containerPort": self.port}],
        }
        if self.image_pull_policy:
            container["imagePullPolicy"] = self.image_pull_policy
        if self.env:
            container["env"] = [{"name": k, "value": str(v)} for k, v in self.env.items()]
        requests = {k: v for k, v in (("cpu", self.cpu), ("memory", self.memory)) if v}
        limits = {k: v for k, v in (("cpu", self.cpu_limit), ("memory", self.memory_limit)) if v}
        if self.gpus_per_worker:
            limits[GPU_RESOURCE] = str(self.gpus_per_worker)
        resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
        if resources:
            container["resources"] = resources
        mounts = [dict(m) for m in self.volume_mounts]
        if self._shm_volume():
            mounts.append({"name": SHM_VOLUME, "mountPath": SHM_PATH})
        if mounts:
            container["volumeMounts"] = mounts
        return container

    def _shm_volume(self) -> dict[str, Any] | None:
        """The memory-backed /dev/shm volume, unless disabled or mounted there already."""
        if not self.shm_size or any(m.get("mountPath") == SHM_PATH for m in self.volume_mounts):
            return None
        return {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": self.shm_size}}

    def _pod_template(self) -> dict[str, Any]:
        pod: dict[str, Any] = {"containers": [self._container()]}
        shm = self._shm_volume()
        volumes = [dict(v) for v in self.volumes] + ([shm] if shm else [])
        if volumes:
            pod["volumes"] = volumes
        if self.node_selector:
            pod["nodeSelector"] = dict(self.node_selector)
        tolerations = [dict(t) for t in self.tolerations]
        # GPU node pools are tainted nvidia.com/gpu (GKE); kind and others add no
        # automatic toleration, so a GPU job carries its own.
        if self.gpus_per_worker and not any(t.get("key") == GPU_RESOURCE for t in tolerations):
            tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
        if tolerations:
            pod["tolerations"] = tolerations
        if self.affinity:
            pod["affinity"] = dict(self.affinity)
        if self.service_account:
            pod["serviceAccountName"] = self.service_account
        metadata: dict[str, Any] = {
            # An injected Istio sidecar keeps the pod alive after training and blocks the
            # workers' direct gRPC traffic: the usual Kubeflow opt-out.
            "annotations": {"sidecar.istio.io/inject": "false"},
        }
        if self.labels:
            metadata["labels"] = dict(self.labels)
        return {"metadata": metadata, "spec": pod}

    def _replica(self, count: int) -> dict[str, Any]:
        return {
            "replicas": count,
            "restartPolicy": self.restart_policy,
            "template": self._pod_template(),
        }

    def to_manifest(self) -> dict[str, Any]:
        """The TFJob as a dict, ready for `yaml.safe_dump` or the Kubernetes API."""
        self.validate()
        run_policy: dict[str, Any] = {"cleanPodPolicy": self.clean_pod_policy}
        for key, value in (
            ("ttlSecondsAfterFinished", self.ttl_seconds_after_finished),
            ("activeDeadlineSeconds", self.active_deadline_seconds),
            ("backoffLimit", self.backoff_limit),
        ):
            if value is not None:
                run_policy[key] = value
        replica_specs: dict[str, Any] = {}
        if self.chief:
            replica_specs["Chief"] = self._replica(1)
        if self.workers:
            replica_specs["Worker"] = self._replica(self.workers)
        spec: dict[str, Any] = {"runPolicy": run_policy, "tfReplicaSpecs": replica_specs}
        if self.success_policy:
            spec["successPolicy"] = self.success_policy
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def training_job(
    name: str,
    *,
    stage: str,
    data: str,
    out: str,
    checkpoint_dir: str | None = None,
    weights: str | None = None,
    profile: str | None = None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    **spec: Any,
) -> TFJobSpec:
    """A TFJob that runs `python -m landmarks.train` for one stage on every replica.

    `overrides` are trainer settings (`{"epochs": 5}` or `["epochs=5"]`); `spec` takes
    any other TFJobSpec field (workers, chief, gpus_per_worker, image, ...).
    """
    args = ["--stage", stage, "--data", data, "--out", out]
    if checkpoint_dir:
        args += ["--checkpoint-dir", checkpoint_dir]
    if weights:
        args += ["--weights", weights]
    if profile:
        args += ["--profile", profile]
    items = (
        [f"{k}={_setting(v)}" for k, v in overrides.items()]
        if isinstance(overrides, Mapping)
        else list(overrides)
    )
    for item in items:
        args += ["--set", item]
    env = {**TRAINER_ENV, **spec.pop("env", {})}
    return TFJobSpec(name=name, args=args, env=env, **spec).validate()


def _setting(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def command_line(manifest: Mapping[str, Any], replica_type: str = "Worker") -> str:
    """The shell command a replica of `manifest` runs; for logs and error messages."""
    container = find_container(manifest["spec"]["tfReplicaSpecs"][replica_type], replica_type)
    return shlex.join([*container.get("command", []), *container.get("args", [])])


def find_container(replica_spec: Mapping[str, Any], replica_type: str) -> Mapping[str, Any]:
    """The replica's `tensorflow` container; the operator needs one by that name."""
    containers = replica_spec.get("template", {}).get("spec", {}).get("containers", [])
    for container in containers:
        if container.get("name") == CONTAINER_NAME:
            return container
    raise InputError(
        f"replica {replica_type} has no container named {CONTAINER_NAME!r}; the operator "
        "injects TF_CONFIG only into that one",
        field=f"spec.tfReplicaSpecs.{replica_type}.template.spec.containers",
    )


def with_object_store_env(
    manifest: Mapping[str, Any],
    uris: Sequence[str | None],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The manifest with what its replicas need to reach the object stores `uris` name.

    For a cluster (the local executor's replicas inherit the launcher's environment):

    - minio:// (KFP's in-cluster store): AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from
      KFP's Secret `mlpipeline-minio-artifact` (keys `accesskey`, `secretkey`), which must
      exist in the job's namespace, and the launcher's LANDMARKS_MINIO_ENDPOINT when it has
      one (without it the replicas use KFP's default endpoint);
    - s3://: the launcher's AWS_REGION and AWS_ENDPOINT_URL(_S3) when set; credentials come
      from the pod's identity (IRSA) or the chart's training env, never from the manifest.

    A variable the container already sets by name is left as it is.
    """
    environ = os.environ if environ is None else environ
    schemes = {scheme(uri) for uri in uris if uri}
    env: list[dict[str, Any]] = []
    if MINIO_SCHEME in schemes:
        for key, name in s3_store.KFP_MINIO_SECRET_ENV.items():
            ref = {"name": s3_store.KFP_MINIO_SECRET, "key": key}
            env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    passed = [s3_store.MINIO_ENDPOINT_ENV] if MINIO_SCHEME in schemes else []
    if S3_SCHEME in schemes or MINIO_SCHEME in schemes:
        passed += ["AWS_REGION", "AWS_DEFAULT_REGION"]
    if S3_SCHEME in schemes:
        passed += ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
    env += [{"name": name, "value": environ[name]} for name in passed if environ.get(name)]
    out = copy.deepcopy(dict(manifest))
    if not env:
        return out
    for replica_type, replica in out["spec"]["tfReplicaSpecs"].items():
        container = find_container(replica, replica_type)
        assert isinstance(container, dict)
        present = {item.get("name") for item in container.get("env", [])}
        container.setdefault("env", []).extend(e for e in env if e["name"] not in present)
    return out
