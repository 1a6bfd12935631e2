"""The Kubernetes API calls of the launcher: the client, the defaults ConfigMap, the owner pod,
and one TFJob's create, get, patch, delete, pods and events.

The Kubernetes client is imported inside the functions: importing the launcher must not load
it (a pipeline that only compiles, or runs locally, never needs it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from landmarks.errors import InputError, LandmarksError
from landmarks.tfjob.launcher.identity import OwnerPod
from landmarks.tfjob.placement import DEFAULTS_CONFIGMAP, DEFAULTS_KEY, parse_defaults
from landmarks.tfjob.spec import API_VERSION, KIND

log = logging.getLogger(__name__)

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "tfjobs"
# Labels the training-operator puts on the pods it creates for a job.
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
SA_TOKEN_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
REQUEST_TIMEOUT = (10, 60)  # (connect, read) seconds of a single request


def load_api_client(kubeconfig: str | os.PathLike[str] | None = None) -> Any:
    """A Kubernetes API client: the given kubeconfig, else in-cluster, else $KUBECONFIG."""
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        elif os.environ.get("KUBERNETES_SERVICE_HOST") and SA_TOKEN_FILE.exists():
            # Re-reads the projected token when it rotates: training outlives a token.
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(client_configuration=cfg)
    except (config.ConfigException, OSError) as err:
        raise LandmarksError(
            f"no Kubernetes credentials: {err} (run in a pod with a service account, or "
            "set KUBECONFIG)"
        ) from None
    # One connection per replica's log stream, plus the watch and the pod listing.
    cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, 32)
    return client.ApiClient(cfg)


def api_error(action: str, err: Any) -> LandmarksError:
    """A LandmarksError that says what was refused and, for 403, which Role grants it."""
    try:
        message = json.loads(err.body).get("message", "") if err.body else ""
    except (TypeError, ValueError):
        message = str(err.body)
    text = f"cannot {action}: {err.status} {err.reason}" + (f": {message}" if message else "")
    if err.status == 403:
        text += (
            "; the launcher's service account needs the landmarks-tfjob-launcher Role of the "
            "landmarks-platform chart in that namespace (values pipelineRunner.*)"
        )
    elif err.status == 404 and "tfjobs" in action:
        text += (
            "; is the training-operator (the kubeflow.org/v1 TFJob CRD) installed, and does "
            "the namespace exist?"
        )
    if err.status == 422:
        return InputError(text, field="manifest")
    return LandmarksError(text)


def transient(err: BaseException) -> bool:
    """An error worth retrying: the API server or the network, not the request."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(err, ApiException):
        return err.status in (0, 429, 500, 502, 503, 504)
    return isinstance(err, HTTPError | ConnectionError | TimeoutError)


def short_error(err: BaseException) -> str:
    """`403: <the API's message>` for an API error, the text of any other."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(err, ApiException):
        try:
            return f"{err.status}: {json.loads(err.body)['message']}"
        except (TypeError, ValueError, KeyError):
            return f"{err.status} {err.reason}"
    return str(err)


def read_training_defaults(core: Any, namespace: str) -> dict[str, Any] | None:
    """`defaults.json` of the chart's ConfigMap in `namespace`, or None where there is none."""
    from kubernetes.client.exceptions import ApiException

    source = f"configmap {namespace}/{DEFAULTS_CONFIGMAP}"
    try:
        configmap = core.read_namespaced_config_map(DEFAULTS_CONFIGMAP, namespace)
    except ApiException as err:
        if err.status in (403, 404):
            log.warning(
                "%s: %s; the replicas get no cluster defaults (service account, security "
                "contexts, GPU placement) beyond what the step sets. Install the "
                "landmarks-platform chart for namespace %s.",
                source,
                "not found" if err.status == 404 else "this identity may not read it",
                namespace,
            )
            return None
        raise api_error(f"read {source}", err) from None
    text = (configmap.data or {}).get(DEFAULTS_KEY)
    if text is None:
        raise InputError(f"has no key {DEFAULTS_KEY!r}", file=source)
    return parse_defaults(text, source=f"{source} ({DEFAULTS_KEY})")


def owner_from_environment(
    core: Any, job_namespace: str, env: Mapping[str, str] | None = None
) -> OwnerPod | None:
    """The launcher's own pod, when it may own a job in `job_namespace`; else None (logged).

    The pod's name comes from KFP_POD_NAME (KFP sets it), POD_NAME or HOSTNAME, its
    namespace from POD_NAMESPACE or the service account's namespace file, its uid from
    KFP_POD_UID, POD_UID or the API.
    """
    env = os.environ if env is None else env
    in_pod = SA_NAMESPACE_FILE.exists()
    name = env.get("KFP_POD_NAME") or env.get("POD_NAME") or (env.get("HOSTNAME") if in_pod else "")
    namespace = env.get("POD_NAMESPACE") or (
        SA_NAMESPACE_FILE.read_text().strip() if in_pod else ""
    )
    if not name or not namespace:
        log.info("not running in a pod: the TFJob gets no owner reference")
        return None
    if namespace != job_namespace:
        log.info(
            "the launcher pod %s/%s cannot own a TFJob in namespace %s (Kubernetes forbids "
            "owners in another namespace): the job is deleted on cancellation, stopped by "
            "runPolicy.activeDeadlineSeconds and removed by ttlSecondsAfterFinished instead",
            namespace,
            name,
            job_namespace,
        )
        return None
    uid = env.get("KFP_POD_UID") or env.get("POD_UID")
    if not uid:
        from kubernetes.client.exceptions import ApiException

        try:
            uid = core.read_namespaced_pod(name, namespace).metadata.uid
        except ApiException as err:
            log.warning("cannot look up the launcher pod %s/%s: %s", namespace, name, err.reason)
            return None
    return OwnerPod(name, namespace, str(uid))


def owned_by(pod: Any, uid: str) -> bool:
    """Whether `pod` (a V1Pod) belongs to the object with this uid."""
    return any(ref.uid == uid for ref in pod.metadata.owner_references or [])


class TFJobApi:
    """The API calls about one TFJob (by namespace and name) and its pods.

    `uid` is the job this launcher owns once it created or adopted one: deletion is
    conditional on it, so a launcher never deletes another step's job of the same name.
    """

    def __init__(
        self, api_client: Any, namespace: str, name: str, *, poll_seconds: float = 2.0
    ) -> None:
        from kubernetes import client

        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.poll_seconds = poll_seconds  # between two looks while waiting for a deletion
        self.uid: str | None = None

    @property
    def what(self) -> str:
        return f"TFJob {self.namespace}/{self.name}"

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, manifest, _request_timeout=REQUEST_TIMEOUT
        )

    def get(self) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name, _request_timeout=REQUEST_TIMEOUT
        )

    def patch(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name, patch
        )

    def watch_request(self, **kwargs: Any) -> Any:
        """One watch (list with `watch=True`) request on the job, as `kubernetes.watch` makes."""
        return self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, **kwargs
        )

    def delete(self) -> bool:
        """Delete the job (`uid`, if known); False when it was gone or is another one by now.

        Its pods and services follow through the garbage collector.
        """
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        # Background: Foreground would hang where no garbage collector runs, and the pods
        # go either way.
        body = client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=self.uid) if self.uid else None,
        )
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, body=body
            )
        except ApiException as err:
            if err.status not in (404, 409):  # gone already, or another job by now
                raise api_error(f"delete tfjobs {self.namespace}/{self.name}", err) from None
            return False
        return True

    def _gone(self, uid: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            job = self.get()
        except ApiException as err:
            if err.status == 404:
                return True
            raise api_error(f"get tfjobs {self.namespace}/{self.name}", err) from None
        return bool(job["metadata"]["uid"] != uid)

    def wait_gone(self, uid: str, limit: float = 300.0) -> None:
        """Wait until job `uid` is deleted (or replaced); an API error other than 404 raises."""
        try:
            Retrying(
                stop=stop_after_delay(limit),
                wait=wait_fixed(self.poll_seconds),
                retry=retry_if_result(lambda gone: not gone),
            )(self._gone, uid)
        except RetryError:
            raise LandmarksError(f"{self.what} is still being deleted") from None

    def list_pods(self) -> list[Any]:
        """The job's pods (of this job or of a previous one of the same name)."""
        return self.core.list_namespaced_pod(
            self.namespace,
            label_selector=f"{JOB_NAME_LABEL}={self.name}",
            _request_timeout=REQUEST_TIMEOUT,
        ).items

    def _pods_left(self, uid: str) -> bool:
        try:
            return any(owned_by(p, uid) for p in self.list_pods())
        except Exception as err:
            log.debug("listing the old job's pods failed: %s", err)
            return True

    def wait_pods_gone(self, uid: str, limit: float = 120.0) -> None:
        """Wait for the pods of job `uid` to go: the next job's pods get the same names."""

        def give_up(_: Any) -> None:
            log.warning(
                "pods of the deleted job %s are still there after %.0fs; creating the new "
                "one anyway (the operator retries its pods)",
                uid,
                limit,
            )

        Retrying(
            stop=stop_after_delay(limit),
            wait=wait_fixed(self.poll_seconds),
            retry=retry_if_result(bool),
            retry_error_callback=give_up,
        )(self._pods_left, uid)

    def events(self) -> list[Any]:
        """The job's events, oldest first; none where they cannot be listed."""
        try:
            events = self.core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.name={self.name},involvedObject.kind={KIND}",
            ).items
        except Exception as err:
            log.debug("cannot list the job's events: %s", err)
            return []
        return sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or ""))
