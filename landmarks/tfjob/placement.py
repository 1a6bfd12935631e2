"""Where a TFJob's replicas run on a cluster, and as whom: the layers that decide it.

`landmarks.tfjob.spec` builds what every replica runs. On a cluster, where the replicas
run (GPUs, node selector, tolerations, affinity) and as whom is decided by five layers,
lowest first, each overriding the ones before it:

1. built-in default: what is left when no layer sets a field: no GPU, any node;
2. chart value: the ConfigMap `landmarks-training-defaults` (key `defaults.json`) that the
   landmarks-platform chart renders in the training namespace from its `training.*` values;
3. manifest: what the TFJob itself sets (explicit `TFJobSpec` fields, e.g.
   `python -m landmarks.tfjob render --gpus 2`);
4. task config: the pipeline author's KFP `TaskConfig` for the task (kfp-kubernetes
   `add_node_selector`, `set_accelerator_limit`, ... on a training task);
5. pipeline parameter: the run's `gpus_per_worker` and `node_selector`
   (`Placement.from_parameters`), where -1 / empty means "not set".

In short: pipeline parameter > task config > chart value > default. The compiled pipeline
sets no task config for placement, so a run that leaves its parameters unset trains where
the chart says. Layers 4 and 5 reach the launcher as one `Placement`:
`Placement.from_parameters(...).over(Placement.from_task_config(...))`.

How each field combines, per replica (pod template and its `tensorflow` container):

- GPUs: the highest layer that gives a count decides it, as a limit on the chart's
  `gpuResourceName` (`nvidia.com/gpu` without a chart); a count of 0 removes the GPU limit,
  which is how a run asks for CPU replicas on a cluster whose chart gives them GPUs;
- other resources: `requests` and `limits` merge key by key, higher layers win;
- nodeSelector, affinity: the highest layer that sets one decides it whole. Selectors are
  not merged key by key: a pool from one layer and a GPU type from another could describe
  a node that does not exist. The `node_selector` parameter `none` means "any node";
- tolerations: the union of every layer (a toleration only permits); a replica that
  requests GPUs also tolerates the GPU taint (as `spec.py` does);
- env (by name), volumes (by name), volumeMounts (by mountPath): merged, higher layers win;
- serviceAccountName, automountServiceAccountToken, securityContext (pod and container):
  the manifest's own value, else the chart's.

Everything here is pure: dicts in, a new dict out.
"""

from __future__ import annotations

import copy
import json
import re
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


# The values of the `gpus_per_worker` and `node_selector` pipeline parameters that mean
# "not set: the layers below decide", and the `node_selector` that means "any node".
GPUS_NOT_SET = -1
NODE_SELECTOR_NOT_SET = ""
ANY_NODE = "none"
# Kubernetes label syntax (apimachinery's validation): an optional DNS-subdomain prefix and
# a name of at most 63 characters; values the same as names, or empty.
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class Placement:
    """The pipeline's settings for the replicas of one task: task config and parameters.

    The fields but `gpus` are those of KFP's `dsl.TaskConfig` (Kubernetes JSON). `None`
    means "not set", so the layers below decide; an empty `node_selector` ({}) is set:
    "any node".
    """

    resources: dict[str, Any] | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[dict[str, Any]] | None = None
    affinity: dict[str, Any] | None = None
    env: list[dict[str, Any]] | None = None
    volumes: list[dict[str, Any]] | None = None
    volume_mounts: list[dict[str, Any]] | None = None
    # GPUs per replica, as a limit on the cluster's GPU resource (the chart's
    # `gpuResourceName`, known only once the defaults are read); 0: CPU only.
    gpus: int | None = None

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
        values = {name: get(name) for name in _TASK_CONFIG_FIELDS}
        # KFP hands empty values as {} or [] as often as None: both mean "not set".
        return cls(**{k: copy.deepcopy(v) if v else None for k, v in values.items()})

    @classmethod
    def from_parameters(
        cls, *, gpus_per_worker: int = GPUS_NOT_SET, node_selector: str = NODE_SELECTOR_NOT_SET
    ) -> Placement:
        """From the pipeline's parameters; -1 and "" leave a field to the layers below.

        `node_selector` is `key=value[,key=value...]` (labels, as `kubectl -l` takes them)
        or `none` for any node.
        """
        # Parameters travel as JSON / protobuf numbers: an integer may arrive as 2.0.
        if isinstance(gpus_per_worker, float) and gpus_per_worker.is_integer():
            gpus_per_worker = int(gpus_per_worker)
        if isinstance(gpus_per_worker, bool) or not isinstance(gpus_per_worker, int):
            raise InputError(
                f"expected an integer, got {gpus_per_worker!r}", field="gpus_per_worker"
            )
        if gpus_per_worker < GPUS_NOT_SET:
            raise InputError(
                f"must be 0 or more, or {GPUS_NOT_SET} for the chart's value "
                f"(got {gpus_per_worker})",
                field="gpus_per_worker",
            )
        return cls(
            gpus=None if gpus_per_worker == GPUS_NOT_SET else gpus_per_worker,
            node_selector=parse_node_selector(node_selector),
        )

    def over(self, below: Placement) -> Placement:
        """The two layers as one: this placement's settings over `below`'s."""
        return Placement(
            resources=_merge_resources(below.resources, self.resources, drop_zero=False) or None,
            node_selector=_first_set(self.node_selector, below.node_selector),
            tolerations=_union(below.tolerations, self.tolerations) or None,
            affinity=_first_set(self.affinity, below.affinity),
            env=_merge_by("name", below.env, self.env) or None,
            volumes=_merge_by("name", below.volumes, self.volumes) or None,
            volume_mounts=_merge_by("mountPath", below.volume_mounts, self.volume_mounts) or None,
            gpus=_first_set(self.gpus, below.gpus),
        )

    def with_gpus(self, count: int | None, resource: str | None = None) -> Placement:
        """A copy that also sets the GPUs per replica (None: leave as is; 0: no GPU).

        `resource` names the extended resource; None: the cluster's (the chart's
        `gpuResourceName`).
        """
        if count is None:
            return self
        if count < 0:
            raise InputError(f"must not be negative (got {count})", field="gpus_per_worker")
        if resource is None:
            return Placement(**{**self.__dict__, "gpus": count})
        resources = copy.deepcopy(self.resources) or {}
        resources.setdefault("limits", {})[resource] = str(count)
        return Placement(**{**self.__dict__, "resources": resources})

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


_TASK_CONFIG_FIELDS = tuple(f.name for f in fields(Placement) if f.name != "gpus")


def parse_node_selector(text: str) -> dict[str, str] | None:
    """The `node_selector` parameter as a nodeSelector: None when empty, {} for `none`."""
    text = (text or "").strip()
    if text == NODE_SELECTOR_NOT_SET:
        return None
    if text.lower() == ANY_NODE:
        return {}
    selector: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise InputError(
                f"{item.strip()!r} is not key=value; use e.g. "
                "cloud.google.com/gke-nodepool=gpu-pool, several joined by ',' "
                f"({ANY_NODE!r}: any node)",
                field="node_selector",
            )
        problem = _label_key_problem(key) or _label_value_problem(value)
        if problem:
            raise InputError(f"{item.strip()!r}: {problem}", field="node_selector")
        if key in selector:
            raise InputError(f"label {key!r} is given twice", field="node_selector")
        selector[key] = value
    return selector


def _label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"the label prefix {prefix!r} is not a DNS subdomain"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            f"the label name {name!r} must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _label_value_problem(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_NAME.match(value):
        return (
            f"the label value {value!r} must be at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _first_set(*values: Any) -> Any:
    return copy.deepcopy(next((v for v in values if v is not None), None))


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
    """The manifest with the chart's defaults under it and the task's placement over it.

    `defaults` is the chart's `defaults.json` (None: no chart, the built-in defaults);
    `placement` the task config with the pipeline parameters over it. The module's
    docstring gives the order and how each field combines.
    """
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

        # A placement's {} is set ("any node"); the manifest's and the chart's are not.
        selector = _first_set(
            placement.node_selector,
            pod.get("nodeSelector") or None,
            defaults.get("nodeSelector") or None,
        )
        _set_or_drop(pod, "nodeSelector", {str(k): str(v) for k, v in (selector or {}).items()})
        affinity = placement.affinity or pod.get("affinity") or defaults.get("affinity")
        _set_or_drop(pod, "affinity", copy.deepcopy(affinity) if affinity else None)

        resource_layers = [
            default_container.get("resources"),
            container.get("resources"),
            placement.resources,
        ]
        if placement.gpus is not None:
            # 0 on both names: a CPU replica whatever name a lower layer used.
            names = {gpu_resource, GPU_RESOURCE} if placement.gpus == 0 else {gpu_resource}
            resource_layers.append({"limits": dict.fromkeys(names, str(placement.gpus))})
        resources = _merge_resources(*resource_layers)
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


def _merge_resources(*layers: Mapping[str, Any] | None, drop_zero: bool = True) -> dict[str, Any]:
    merged: dict[str, dict[str, str]] = {}
    for layer in layers:
        for kind in ("requests", "limits"):
            for name, value in ((layer or {}).get(kind) or {}).items():
                merged.setdefault(kind, {})[str(name)] = str(value)
    for kind in list(merged):
        for name, value in list(merged[kind].items()):
            # An extended resource at 0 means "none": the way to ask for a CPU-only replica.
            # Kept while layers are only combined, so the 0 still overrides a lower layer.
            if drop_zero and "/" in name and not _positive(value):
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
    "ANY_NODE",
    "CONTAINER_NAME",
    "DEFAULTS_CONFIGMAP",
    "DEFAULTS_KEY",
    "GPUS_NOT_SET",
    "NODE_SELECTOR_NOT_SET",
    "Placement",
    "apply_cluster_settings",
    "parse_defaults",
    "parse_node_selector",
    "replica_pod_templates",
]
