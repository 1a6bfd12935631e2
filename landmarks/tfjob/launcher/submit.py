"""Create a step's TFJob, or adopt the one a previous attempt of the step created.

A job of the step's name that carries the step's launch key is the step's own: a retried
step follows it instead of starting a second one. A Failed one is replaced while the step
has attempts left (`landmarks.io/attempt`), so a retry trains again instead of reporting the
old failure until the job's TTL removes it. A job of that name without the key is an error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from landmarks.errors import LandmarksError
from landmarks.tfjob.launcher.identity import (
    LAUNCH_KEY_LABEL,
    OwnerPod,
    attempt_of,
    launch_key,
    with_attempt,
)
from landmarks.tfjob.launcher.k8s_api import TFJobApi, api_error
from landmarks.tfjob.results import terminal_condition

log = logging.getLogger(__name__)

_TRIES = 4  # creations in a row that may meet a job being deleted or reappearing


@dataclass
class Submitted:
    """The job as the API has it, which attempt of the step it is, and whether it is the last."""

    job: dict[str, Any]
    attempt: int
    out_of_attempts: bool = False


def submit(
    api: TFJobApi,
    manifest: Mapping[str, Any],
    *,
    key: str | None,
    owner: OwnerPod | None,
    max_attempts: int,
    say: Callable[[str], None],
    hold_signals: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> Submitted:
    """Create the job, or adopt ours if it exists (see the module's doc).

    `api.uid` is set as soon as the job is ours: within `hold_signals()`, so that a SIGTERM
    that arrives while a create request is answered finds the uid it must delete.
    """
    from kubernetes.client.exceptions import ApiException

    attempt = 1
    for _ in range(_TRIES):
        try:
            with hold_signals():
                job = api.create(with_attempt(manifest, attempt))
                api.uid = job["metadata"]["uid"]
            say("created" + (f" (attempt {attempt} of {max_attempts})" if attempt > 1 else ""))
            return Submitted(job, attempt)
        except ApiException as err:
            if err.status != 409:
                raise api_error(f"create tfjobs {api.what}", err) from None
        try:
            with hold_signals():
                job = api.get()
                theirs = launch_key(job)
                if key and theirs == key:
                    api.uid = job["metadata"]["uid"]
        except ApiException as err:
            if err.status == 404:
                continue  # deleted in between: create it again
            raise api_error(f"get tfjobs {api.what}", err) from None
        if not key or theirs != key:
            raise LandmarksError(
                f"{api.what} already exists and this step did not create it (its "
                f"{LAUNCH_KEY_LABEL} label is {theirs!r}, this step's is {key!r}): "
                "delete it or give the job another name"
            )
        if job["metadata"].get("deletionTimestamp"):
            say("a previous attempt's job is being deleted: waiting to create anew")
            api.wait_gone(job["metadata"]["uid"])
            api.uid = None
            continue
        attempt = attempt_of(job)
        say(f"adopting the job a previous attempt of this step created ({theirs})")
        ended = terminal_condition(job) or {}
        if ended.get("type") == "Failed" and attempt < max_attempts:
            say(
                f"attempt {attempt} of {max_attempts} failed "
                f"({ended.get('reason', '')}: {ended.get('message', '')}): deleting its "
                f"job to start attempt {attempt + 1}"
            )
            replace(api, job, say)
            attempt += 1
            continue
        out_of_attempts = ended.get("type") == "Failed"
        again = (
            f"(delete the TFJob to train again: kubectl -n {api.namespace} delete tfjob {api.name})"
        )
        if out_of_attempts:
            say(
                f"attempt {attempt} of {max_attempts} failed already and no attempt is "
                f"left, so its result stands {again}"
            )
        elif ended:
            say(f"it has ended already, so its result stands {again}")
        return Submitted(adopt(api, job, owner), attempt, out_of_attempts)
    raise LandmarksError(f"{api.what} keeps reappearing and disappearing; giving up")


def replace(api: TFJobApi, job: Mapping[str, Any], say: Callable[[str], None]) -> None:
    """Delete a job of ours and wait until it and its pods are gone (same names follow)."""
    uid = str(job["metadata"]["uid"])
    api.uid = uid
    if api.delete():
        say("deleted")
    api.wait_gone(uid)
    api.wait_pods_gone(uid)
    api.uid = None


def adopt(api: TFJobApi, job: dict[str, Any], owner: OwnerPod | None) -> dict[str, Any]:
    """Add this launcher's pod to the owners, so the job outlives the previous one's."""
    from kubernetes.client.exceptions import ApiException

    refs = list(job["metadata"].get("ownerReferences") or [])
    if owner is None or any(r.get("uid") == owner.uid for r in refs):
        return job
    patch = {
        "metadata": {
            "ownerReferences": [*refs, owner.reference()],
            "resourceVersion": job["metadata"]["resourceVersion"],
        }
    }
    try:
        return api.patch(patch)
    except ApiException as err:
        log.warning("could not add %s as an owner of the job: %s", owner.name, err.reason)
        return job
