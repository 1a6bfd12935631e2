"""Where a TFJob's replicas run on a cluster, and as whom: the layers that decide it.

`landmarks.tfjob.spec` builds what every replica runs. On a cluster three more layers
decide where and how, each overriding the one before:

1. the cluster's defaults, the ConfigMap `landmarks-training-defaults` (key `defaults.json`)
   that the landmarks-platform chart renders in the training namespace: service account,
   security contexts, volumes, env, CPU/memory/GPU resources, node selector, tolerations;
2. what the manifest itself sets (explicit `TFJobSpec` fields);
3. the pipeline author's settings for the task (`Placement`: KFP's `TaskConfig`, or
   explicit parameters): GPU limits, node selector, tolerations, affinity, env, volumes.

How each field combines, per replica (pod template and its `tensorflow` container):

- resources: `requests` and `limits` merge key by key, later layers win; an extended
  resource (`nvidia.com/gpu`) set to 0 is removed, which is how a task asks for CPU only;
- nodeSelector: merges key by key (the defaults may pin the accelerator type of the pool
  the task picks); affinity: the last layer that sets it wins;
- tolerations: the union of every layer; a replica that requests GPUs also tolerates the
  GPU taint (as `spec.py` does);
- env (by name), volumes (by name), volumeMounts (by mountPath): merged, later layers win;
- serviceAccountName, automountServiceAccountToken, securityContext (pod and container):
  the manifest's own value, else the defaults'.

Everything here is pure: dicts in, a new dict out.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from landmarks.errors import InputError
from landmarks.tfjob.spec import CONTAINER_NAME, GPU_RESOURCE, find_container

DEFAULTS_CONFIGMAP = "landmarks-training-defaults"
DEFAULTS_KEY = "defaults.json"
DEFAULTS_SCHEMA_VERSION = 1

# Pod-spec fields the defaults may set, with the JSON type each must have.
_POD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "serviceAccountName": str,
    "automountServiceAccountToken": bool,
    "nodeSelector": dict,
    "tolerations": list,
    "affinity": dict,
    "securityContext": dict,
    "volumes": list,
}
_CONTAINER_FIELDS: dict[str, type | tuple[type, ...]] = {
    "securityContext": dict,
    "resources": dict,
    "volumeMounts": list,
    "env": list,
}


@dataclass
class Placement:
    """The pipeline author's settings for the replicas of one task.

    Field names and shapes are those of KFP's `dsl.TaskConfig` (Kubernetes JSON): `None`
    means "not set", so the layers below decide.
    """

    resources: dict[str, Any] | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[dict[str, Any]] | None = None
    affinity: dict[str, Any] | None = None
    env: list[dict[str, Any]] | None = None
    volumes: list[dict[str, Any]] | None = None
    volume_mounts: list[dict[str, Any]] | None = None

    @classmethod
    def from_task_config(cls, task_config: Any) -> Placement:
        """From a `kfp.dsl.TaskConfig` (or any object or mapping with its field names)."""
        if task_config is None:
            return cls()
        get = (
            task_config.get
            if isinstance(task_config, Mapping)
            else lambda name: getattr(task_config, name, None)
        )
        values = {f.name: get(f.name) for f in fields(cls)}
        # KFP hands empty values as {} or [] as often as None: both mean "not set".
        return cls(**{k: copy.deepcopy(v) if v else None for k, v in values.items()})

    def with_gpus(self, count: int | None, resource: str = GPU_RESOURCE) -> Placement:
        """A copy that also sets the GPU limit (None: leave as is; 0: no GPU)."""
        if count is None:
            return self
        if count < 0:
            raise InputError(f"must not be negative (got {count})", field="gpus_per_worker")
        resources = copy.deepcopy(self.resources) or {}
        resources.setdefault("limits", {})[resource] = str(count)
        return Placement(**{**self.__dict__, "resources": resources})

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def parse_defaults(text: str, *, source: str) -> dict[str, Any]:
    """Check `defaults.json` of the training-defaults ConfigMap and return it.

    `source` names where it came from in errors (e.g. `configmap ns/landmarks-training-defaults`).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON: {err}", file=source) from None
    if not isinstance(data, dict):
        raise InputError("must be a JSON object", file=source)
    version = data.get("schemaVersion")
    if version != DEFAULTS_SCHEMA_VERSION:
        raise InputError(
            f"schemaVersion {version!r} is not supported; this launcher reads version "
            f"{DEFAULTS_SCHEMA_VERSION} (upgrade the landmarks-platform chart or the pipeline "
            "so they match)",
            file=source,
            field="schemaVersion",
        )
    _check_types(data, _POD_FIELDS, source, "")
    container = data.get("container", {})
    if not isinstance(container, dict):
        raise InputError("must be an object", file=source, field="container")
    _check_types(container, _CONTAINER_FIELDS, source, "container.")
    return data


def _check_types(
    data: Mapping[str, Any], expected: Mapping[str, type | tuple[type, ...]], source: str, at: str
) -> None:
    for key, kind in expected.items():
        value = data.get(key)
        if value is not None and not isinstance(value, kind):
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise InputError(
                f"expected a {_JSON_NAMES.get(name, name)}, got {type(value).__name__}",
                file=source,
                field=f"{at}{key}",
            )
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise InputError("expected an object", file=source, field=f"{at}{key}[{i}]")


_JSON_NAMES = {"dict": "JSON object", "list": "JSON array", "str": "string", "bool": "boolean"}


def apply_cluster_settings(
    manifest: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    placement: Placement | None = None,
) -> dict[str, Any]:
    """The manifest with the cluster's defaults under it and the task's placement over it."""
    out = copy.deepcopy(dict(manifest))
    defaults = defaults or {}
    placement = placement or Placement()
    default_container = defaults.get("container") or {}
    gpu_resource = str(defaults.get("gpuResourceName") or GPU_RESOURCE)
    for replica_type, replica in (out.get("spec", {}).get("tfReplicaSpecs") or {}).items():
        template = replica.setdefault("template", {})
        pod = template.setdefault("spec", {})
        container = find_container(replica, replica_type)
        assert isinstance(container, dict)

        for key in ("serviceAccountName", "automountServiceAccountToken", "securityContext"):
            if key not in pod and defaults.get(key) is not None:
                pod[key] = copy.deepcopy(defaults[key])
        if "securityContext" not in container and default_container.get("securityContext"):
            container["securityContext"] = copy.deepcopy(default_container["securityContext"])

        selector = {
            **(defaults.get("nodeSelector") or {}),
            **(pod.get("nodeSelector") or {}),
            **(placement.node_selector or {}),
        }
        _set_or_drop(pod, "nodeSelector", {str(k): str(v) for k, v in selector.items()})
        affinity = placement.affinity or pod.get("affinity") or defaults.get("affinity")
        _set_or_drop(pod, "affinity", copy.deepcopy(affinity) if affinity else None)

        resources = _merge_resources(
            default_container.get("resources"), container.get("resources"), placement.resources
        )
        _set_or_drop(container, "resources", resources)

        tolerations = _union(
            defaults.get("tolerations"), pod.get("tolerations"), placement.tolerations
        )
        gpus = [
            name
            for name, value in (resources or {}).get("limits", {}).items()
            if name in (gpu_resource, GPU_RESOURCE) and _positive(value)
        ]
        for name in gpus:
            # GPU node pools are tainted with the GPU resource name (GKE: nvidia.com/gpu).
            if not any(t.get("key") == name for t in tolerations):
                tolerations.append({"key": name, "operator": "Exists", "effect": "NoSchedule"})
        _set_or_drop(pod, "tolerations", tolerations)

        _set_or_drop(
            pod,
            "volumes",
            _merge_by("name", defaults.get("volumes"), pod.get("volumes"), placement.volumes),
        )
        _set_or_drop(
            container,
            "volumeMounts",
            _merge_by(
                "mountPath",
                default_container.get("volumeMounts"),
                container.get("volumeMounts"),
                placement.volume_mounts,
            ),
        )
        _set_or_drop(
            container,
            "env",
            _merge_by("name", default_container.get("env"), container.get("env"), placement.env),
        )
    return out


def _set_or_drop(target: dict[str, Any], key: str, value: Any) -> None:
    if value:
        target[key] = value
    else:
        target.pop(key, None)


def _positive(quantity: Any) -> bool:
    try:
        return float(str(quantity)) > 0
    except ValueError:
        return True  # a quantity like "1k" is positive; the API server checks its syntax


def _merge_resources(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, dict[str, str]] = {}
    for layer in layers:
        for kind in ("requests", "limits"):
            for name, value in ((layer or {}).get(kind) or {}).items():
                merged.setdefault(kind, {})[str(name)] = str(value)
    for kind in list(merged):
        for name, value in list(merged[kind].items()):
            # An extended resource at 0 means "none": the way to ask for a CPU-only replica.
            if "/" in name and not _positive(value):
                del merged[kind][name]
        if not merged[kind]:
            del merged[kind]
    return merged


def _union(*layers: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for layer in layers:
        for item in layer or ():
            if dict(item) not in out:
                out.append(copy.deepcopy(dict(item)))
    return out


def _merge_by(key: str, *layers: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    merged: dict[Any, dict[str, Any]] = {}
    for layer in layers:
        for item in layer or ():
            merged[item.get(key)] = copy.deepcopy(dict(item))  # later layers replace, in place
    return list(merged.values())


def replica_pod_templates(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """`{replica type: pod template}` of a TFJob manifest, for checks and tests."""
    specs = manifest.get("spec", {}).get("tfReplicaSpecs") or {}
    return {rtype: spec.get("template", {}) for rtype, spec in specs.items()}


__all__ = [
    "CONTAINER_NAME",
    "DEFAULTS_CONFIGMAP",
    "DEFAULTS_KEY",
    "Placement",
    "apply_cluster_settings",
    "parse_defaults",
    "replica_pod_templates",
]
