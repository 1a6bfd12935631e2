"""The Pod Security Standards' `restricted` profile (baseline included), checked on a pod.

Written from https://kubernetes.io/docs/concepts/security/pod-security-standards/ so the
chart tests can tell which field breaks the profile; the namespace's admission plugin applies
the same rules on a cluster.
"""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """Every rule of the restricted profile the pod breaks, as `field: reason` lines."""
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    found: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"spec.{field}: must be unset or false")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            found.append(f"spec.volumes[{volume['name']}]: type {sorted(kinds)} not allowed")
    for sysctl in psc.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"spec.securityContext.sysctls: {sysctl['name']} is not safe")
    found += _selinux("spec.securityContext", psc)
    if psc.get("runAsUser") == 0:
        found.append("spec.securityContext.runAsUser: must not be 0")
    containers = [
        (kind, c)
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(kind) or []
    ]
    for kind, container in containers:
        where = f"spec.{kind}[{container['name']}]"
        csc = container.get("securityContext") or {}
        if csc.get("privileged"):
            found.append(f"{where}.securityContext.privileged: must be false")
        if csc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}.securityContext.allowPrivilegeEscalation: must be false")
        caps = csc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{where}.securityContext.capabilities.drop: must include ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{where}.securityContext.capabilities.add: only NET_BIND_SERVICE")
        run_as_non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if run_as_non_root is not True:
            found.append(f"{where}: runAsNonRoot must be true (pod or container)")
        if csc.get("runAsUser") == 0:
            found.append(f"{where}.securityContext.runAsUser: must not be 0")
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
        if csc.get("procMount", "Default") != "Default":
            found.append(f"{where}.securityContext.procMount: must be Default")
        found += _selinux(f"{where}.securityContext", csc)
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{where}.ports: hostPort not allowed")
    return found


def _selinux(where: str, context: dict[str, Any]) -> list[str]:
    options = context.get("seLinuxOptions") or {}
    found = []
    if options.get("type", "") not in SELINUX_TYPES:
        found.append(f"{where}.seLinuxOptions.type: {options['type']} not allowed")
    for field in ("user", "role"):
        if options.get(field):
            found.append(f"{where}.seLinuxOptions.{field}: must be unset")
    return found
