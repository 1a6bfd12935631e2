#!/usr/bin/env python3
"""Starts, checks and stops the local Kubernetes control plane for integration tests.

    testcluster.py up          start everything (or say it is up) and print the kubeconfig path
    testcluster.py down        stop every process `up` started, by process id
    testcluster.py status      health of each component; exit 1 if any is unhealthy
    testcluster.py kubeconfig  print the admin kubeconfig path (exit 1 if the cluster is not up)

What runs, all on 127.0.0.1 from the binaries scripts/test-cluster/build.sh put in the cache:
etcd; kube-apiserver with TLS, client-certificate authentication, Node,RBAC authorization and
service-account tokens signed by a key generated here; kube-controller-manager (service-account
tokens and default service accounts, garbage collection) and kube-scheduler, each with its own
identity; KWOK, which fakes the nodes of nodes.yaml and moves pods through kwok-stages.yaml; the
TFJob CRD of the pinned training-operator release, applied server-side; and the
training-operator itself with --enable-scheme=tfjob, when it was built.

State lives in $LANDMARKS_CACHE/test-cluster/run (pids and ports in state.json, logs/, pki/,
kubeconfig). The ConfigMap kube-public/landmarks-test-cluster tells tests what the cluster
offers (versions, whether the operator runs) through the API itself.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import fcntl
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("LANDMARKS_CACHE", Path.home() / ".cache" / "landmarks"))
ROOT = CACHE / "test-cluster"
RUN = ROOT / "run"
STATE = RUN / "state.json"
KUBECONFIG = RUN / "kubeconfig"

# The operator hard-codes where its webhook server reads its certificate (pkg/cert/cert.go),
# so only one operator per machine can run; the namespace and Secret names are its defaults.
OPERATOR_CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")
OPERATOR_NAMESPACE = "kubeflow"
OPERATOR_SECRET = "training-operator-webhook-cert"
TFJOB_CRD = "tfjobs.kubeflow.org"
SERVICE_CIDR = "10.96.0.0/16"
# Process start order; `down` stops them in reverse.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "training-operator",
)


class ClusterError(Exception):
    """A step failed; the message says which and where its log is."""


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} test-cluster: {message}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    """The pinned versions of versions.env (KEY=VALUE lines)."""
    out = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def binary(component: str, name: str) -> Path:
    key = {
        "kubernetes": "KUBERNETES_VERSION",
        "etcd": "ETCD_VERSION",
        "kwok": "KWOK_VERSION",
        "training-operator": "TRAINING_OPERATOR_VERSION",
    }[component]
    return ROOT / f"{component}-{versions()[key]}" / "bin" / name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- certificates --------------------------------------------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
    *,
    ca: bool = False,
    server_names: list[str] | None = None,
    server_ips: list[str] | None = None,
    client: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        ekus = [ExtendedKeyUsageOID.SERVER_AUTH] if server_names or server_ips else []
        ekus += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if server_names or server_ips:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names or []]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips or []]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


# Identities of the clients: the control-plane components get the users that Kubernetes'
# bootstrap RBAC policy already grants their permissions to; the rest act as cluster admins.
CLIENTS = {
    "admin": ("landmarks-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", None),
    "kube-scheduler": ("system:kube-scheduler", None),
}


def make_pki(pki: Path) -> None:
    """CA, API server serving certificate, client certificates, service-account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert(_name("landmarks-test-cluster-ca"), ca_key, None, ca=True)
    _write_key(pki / "ca.key", ca_key)
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    key = _key()
    cert = _cert(
        _name("kube-apiserver"),
        key,
        (ca, ca_key),
        server_names=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        server_ips=["127.0.0.1", "10.96.0.1"],
    )
    _write_key(pki / "apiserver.key", key)
    (pki / "apiserver.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    for user, (common_name, group) in CLIENTS.items():
        key = _key()
        cert = _cert(_name(common_name, group), key, (ca, ca_key), client=True)
        _write_key(pki / f"{user}.key", key)
        (pki / f"{user}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    # The aggregation layer's CA: without it, components that read
    # kube-system/extension-apiserver-authentication log an error every few seconds.
    proxy_ca_key = _key()
    proxy_ca = _cert(_name("landmarks-test-cluster-front-proxy-ca"), proxy_ca_key, None, ca=True)
    (pki / "front-proxy-ca.crt").write_bytes(proxy_ca.public_bytes(serialization.Encoding.PEM))
    key = _key()
    cert = _cert(_name("front-proxy-client"), key, (proxy_ca, proxy_ca_key), client=True)
    _write_key(pki / "front-proxy-client.key", key)
    (pki / "front-proxy-client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    sa_key = _key()
    _write_key(pki / "sa.key", sa_key)
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def write_kubeconfig(path: Path, pki: Path, user: str, server: str) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "landmarks-test",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(f"{user}.crt"),
                    "client-key-data": b64(f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "landmarks-test", "context": {"cluster": "landmarks-test", "user": user}}
        ],
        "current-context": "landmarks-test",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


# --- a minimal REST client (the admin identity) ----------------------------------------------


class Api:
    """Just enough of the Kubernetes REST API for start-up: no kubectl needed."""

    def __init__(self, port: int, pki: Path) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context, timeout=timeout
        )
        try:
            headers = {"Content-Type": content_type, "Accept": "application/json"}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(data) if data else None
        except json.JSONDecodeError:
            return resp.status, data.decode(errors="replace")

    def ok(self, method: str, path: str, obj: Any = None, **kwargs: Any) -> Any:
        body = json.dumps(obj).encode() if obj is not None else None
        status, data = self.request(method, path, body, **kwargs)
        if status >= 300:
            raise ClusterError(f"{method} {path} -> HTTP {status}: {data}")
        return data

    def create(self, path: str, obj: dict[str, Any]) -> None:
        """POST, treating AlreadyExists as success (a restarted `up` reuses nothing else)."""
        status, data = self.request("POST", path, json.dumps(obj).encode())
        if status >= 300 and status != 409:
            raise ClusterError(f"POST {path} -> HTTP {status}: {data}")

    def apply(self, path: str, manifest: bytes) -> None:
        """Server-side apply: no 256 KiB last-applied annotation, so the 600 KB CRD fits."""
        path = f"{path}?fieldManager=landmarks-test-cluster&force=true"
        status, data = self.request(
            "PATCH", path, manifest, content_type="application/apply-patch+yaml"
        )
        if status >= 300:
            raise ClusterError(f"PATCH {path} -> HTTP {status}: {data}")


# --- processes ------------------------------------------------------------------------------


@dataclass
class State:
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    binaries: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def save(self) -> None:
        tmp = STATE.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__ | {"kubeconfig": str(KUBECONFIG)}, indent=2))
        tmp.replace(STATE)

    @classmethod
    def load(cls) -> State | None:
        if not STATE.exists():
            return None
        data = json.loads(STATE.read_text())
        data.pop("kubeconfig", None)
        return cls(**data)


def is_ours(pid: int, exe: str) -> bool:
    """True while `pid` is alive and still runs `exe` (a recycled pid is someone else's)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not cmdline or cmdline[0].decode(errors="replace") != exe:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# Processes this invocation started: right after fork their /proc cmdline is still Python's,
# so liveness during start-up comes from the Popen objects, not from is_ours().
_started: dict[str, subprocess.Popen[bytes]] = {}


def start(state: State, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    logs = RUN / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=RUN,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # outlives this script; `down` ends it by pid
        )
    _started[name] = proc
    state.pids[name] = proc.pid
    state.binaries[name] = argv[0]
    state.save()


def log_tail(name: str, lines: int = 25) -> str:
    path = RUN / "logs" / f"{name}.log"
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {path}:\n" + "\n".join(text)


def wait_until(
    state: State, name: str, check: Callable[[], bool], what: str, timeout: float = 90.0
) -> None:
    """Poll `check` until true; fail early, with the log, if the component's process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = _started.get(name)
        if proc is not None and proc.poll() is not None:
            raise ClusterError(
                f"{name} exited ({proc.returncode}) while waiting for {what}\n{log_tail(name)}"
            )
        try:
            if check():
                return
        except (OSError, ssl.SSLError, http.client.HTTPException, ClusterError):
            pass
        time.sleep(0.25)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}\n{log_tail(name)}")


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    with urllib.request.urlopen(url, timeout=5, context=context) as resp:
        return resp.status == 200


def insecure() -> ssl.SSLContext:
    # The controller-manager and scheduler serve /healthz with self-signed certificates.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- up / down ------------------------------------------------------------------------------


def healthy(state: State) -> list[str]:
    """Names of the components that are not running or not answering."""
    bad = []
    checks: dict[str, Callable[[], bool]] = {
        "etcd": lambda: http_ok(f"http://127.0.0.1:{state.ports['etcd']}/health"),
        "kube-apiserver": lambda: (
            Api(state.ports["kube-apiserver"], RUN / "pki").request("GET", "/readyz", timeout=5)[0]
            == 200
        ),
        "kube-controller-manager": lambda: http_ok(
            f"https://127.0.0.1:{state.ports['kube-controller-manager']}/healthz", insecure()
        ),
        "kube-scheduler": lambda: http_ok(
            f"https://127.0.0.1:{state.ports['kube-scheduler']}/healthz", insecure()
        ),
        "kwok": lambda: http_ok(f"http://127.0.0.1:{state.ports['kwok']}/healthz"),
        "training-operator": lambda: http_ok(
            f"http://127.0.0.1:{state.ports['training-operator-health']}/readyz"
        ),
    }
    for name, pid in state.pids.items():
        try:
            ok = is_ours(pid, state.binaries[name]) and checks[name]()
        except (OSError, ssl.SSLError, http.client.HTTPException, KeyError):
            ok = False
        if not ok:
            bad.append(name)
    return bad


def stop(state: State) -> None:
    """SIGTERM each recorded process (newest first), then SIGKILL what outlives 15 s."""
    for name in reversed([n for n in COMPONENTS if n in state.pids]):
        pid, exe = state.pids[name], state.binaries[name]
        proc = _started.get(name)
        if proc is not None:  # started by this invocation: it may not have exec'd yet

            def alive(proc: subprocess.Popen[bytes] = proc) -> bool:
                return proc.poll() is None
        else:

            def alive(pid: int = pid, exe: str = exe) -> bool:
                return is_ours(pid, exe)

        if not alive():
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive():
            log(f"{name} (pid {pid}) ignored SIGTERM; killing it")
            os.kill(pid, signal.SIGKILL)
        log(f"stopped {name} (pid {pid})")


def require_binaries() -> dict[str, Path]:
    bins = {
        "etcd": binary("etcd", "etcd"),
        "kube-apiserver": binary("kubernetes", "kube-apiserver"),
        "kube-controller-manager": binary("kubernetes", "kube-controller-manager"),
        "kube-scheduler": binary("kubernetes", "kube-scheduler"),
        "kwok": binary("kwok", "kwok"),
    }
    missing = [str(p) for p in bins.values() if not os.access(p, os.X_OK)]
    if missing:
        raise ClusterError(
            "missing binaries (run `make test-cluster-build`):\n  " + "\n  ".join(missing)
        )
    return bins


def crd_path() -> Path:
    """The TFJob CRD inside the pinned training-operator module (scripts/.../upstream.sh)."""
    out = subprocess.run(
        [str(HERE / "upstream.sh"), "crd-path"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise ClusterError(f"cannot locate the TFJob CRD: {out.stderr.strip()}")
    return Path(out.stdout.strip())


def up() -> None:
    began = time.monotonic()
    state = State.load()
    if state is not None:
        bad = healthy(state)
        if not bad:
            log(f"already up and healthy; kubeconfig: {KUBECONFIG}")
            print(KUBECONFIG)
            return
        log(f"a previous cluster is unhealthy ({', '.join(bad)}); restarting it")
        stop(state)
    bins = require_binaries()
    operator = binary("training-operator", "training-operator.v1")
    if RUN.exists():
        shutil.rmtree(RUN)
    RUN.mkdir(parents=True)
    state = State()
    try:
        _up(state, bins, operator)
    except BaseException:
        log("start-up failed; stopping what was started (logs kept in " + str(RUN / "logs") + ")")
        stop(state)
        STATE.unlink(missing_ok=True)
        raise
    log(f"up in {time.monotonic() - began:.1f}s; kubeconfig: {KUBECONFIG}")
    print(KUBECONFIG)


def _up(state: State, bins: dict[str, Path], operator: Path) -> None:
    pki = RUN / "pki"
    make_pki(pki)
    for name in ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager"):
        state.ports[name] = free_port()
    for name in ("kube-scheduler", "kwok", "training-operator-health", "training-operator-webhook"):
        state.ports[name] = free_port()
    etcd_url = f"http://127.0.0.1:{state.ports['etcd']}"
    peer_url = f"http://127.0.0.1:{state.ports['etcd-peer']}"
    server = f"https://127.0.0.1:{state.ports['kube-apiserver']}"
    write_kubeconfig(KUBECONFIG, pki, "admin", server)
    for user in ("kube-controller-manager", "kube-scheduler"):
        write_kubeconfig(RUN / f"{user}.kubeconfig", pki, user, server)

    log(f"etcd on {etcd_url}")
    start(
        state,
        "etcd",
        [
            str(bins["etcd"]),
            "--name=node0",
            f"--data-dir={RUN / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=node0={peer_url}",
            # A throwaway test store: durability buys nothing and fsync costs seconds.
            "--unsafe-no-fsync",
            "--auto-compaction-retention=1",
            "--log-level=warn",
        ],
    )
    wait_until(state, "etcd", lambda: http_ok(f"{etcd_url}/health"), "etcd /health")

    log(f"kube-apiserver on {server}")
    start(
        state,
        "kube-apiserver",
        [
            str(bins["kube-apiserver"]),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={state.ports['kube-apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # Endpoints may not hold loopback addresses, so the `kubernetes` Service stays empty.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={pki}",
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        ],
    )
    api = Api(state.ports["kube-apiserver"], pki)
    wait_until(
        state,
        "kube-apiserver",
        lambda: api.request("GET", "/readyz", timeout=5)[0] == 200,
        "kube-apiserver /readyz",
    )

    log("kube-controller-manager and kube-scheduler")
    start(
        state,
        "kube-controller-manager",
        [
            str(bins["kube-controller-manager"]),
            f"--kubeconfig={RUN / 'kube-controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={RUN / 'kube-controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={RUN / 'kube-controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={state.ports['kube-controller-manager']}",
            "--leader-elect=false",
            # Each controller gets its own service account, as in a real cluster.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cert-dir={RUN / 'kube-controller-manager-certs'}",
        ],
    )
    start(
        state,
        "kube-scheduler",
        [
            str(bins["kube-scheduler"]),
            f"--kubeconfig={RUN / 'kube-scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={RUN / 'kube-scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={RUN / 'kube-scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={state.ports['kube-scheduler']}",
            "--leader-elect=false",
            f"--cert-dir={RUN / 'kube-scheduler-certs'}",
        ],
    )

    log("kwok with the stages of kwok-stages.yaml")
    pod_logs = write_pod_logs(RUN)
    start(
        state,
        "kwok",
        [
            str(bins["kwok"]),
            f"--kubeconfig={KUBECONFIG}",
            f"--config={HERE / 'kwok-stages.yaml'}",
            f"--config={pod_logs}",
            "--manage-all-nodes=true",
            # The API server reaches "kubelets" (logs, exec) at the node IP: keep it on loopback.
            # Pod IPs are bookkeeping only; nothing routes to them.
            "--node-ip=127.0.0.1",
            "--cidr=10.244.0.0/16",
            f"--server-address=127.0.0.1:{state.ports['kwok']}",
            f"--node-port={state.ports['kwok']}",
            "--node-lease-duration-seconds=40",
        ],
    )
    for name in ("kube-controller-manager", "kube-scheduler"):
        port = state.ports[name]
        wait_until(
            state,
            name,
            lambda port=port: http_ok(f"https://127.0.0.1:{port}/healthz", insecure()),
            f"{name} /healthz",
        )
    wait_until(
        state,
        "kwok",
        lambda: http_ok(f"http://127.0.0.1:{state.ports['kwok']}/healthz"),
        "kwok /healthz",
    )

    for node in yaml.safe_load_all((HERE / "nodes.yaml").read_text()):
        api.create("/api/v1/nodes", node)
    wait_until(state, "kwok", lambda: nodes_ready(api), "every node Ready")
    # The controller-manager's service-account controller creates it; pods need it to exist.
    wait_until(
        state,
        "kube-controller-manager",
        lambda: api.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        "the default service account",
    )

    log("TFJob CRD, applied server-side")
    api.apply(
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{TFJOB_CRD}",
        crd_path().read_bytes(),
    )
    wait_until(state, "kube-apiserver", lambda: crd_established(api), f"{TFJOB_CRD} Established")

    info = {k.lower(): v for k, v in versions().items()} | {"kubeconfig": str(KUBECONFIG)}
    if os.access(operator, os.X_OK):
        start_operator(state, api, operator)
        info["training-operator"] = "running"
    else:
        reason = f"not built ({operator} missing; see its build.log)"
        log(f"training-operator {reason}: TFJobs will be stored but not run")
        state.notes["training-operator"] = reason
        info["training-operator"] = reason
        state.save()
    api.create("/api/v1/namespaces/kube-public/configmaps", configmap(info))


def start_operator(state: State, api: Api, operator: Path) -> None:
    log("training-operator --enable-scheme=tfjob")
    api.create(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
    )
    # The operator's certificate rotator fills this Secret but never creates it.
    api.create(
        f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": OPERATOR_SECRET}},
    )
    # Files of an earlier cluster would be taken as mounted before the new Secret is filled.
    for name in ("tls.crt", "tls.key"):
        (OPERATOR_CERT_DIR / name).unlink(missing_ok=True)
    start(
        state,
        "training-operator",
        [
            str(operator),
            "--enable-scheme=tfjob",
            "--leader-elect=false",
            "--metrics-bind-address=0",
            f"--health-probe-bind-address=127.0.0.1:{state.ports['training-operator-health']}",
            f"--webhook-server-port={state.ports['training-operator-webhook']}",
        ],
        env={"KUBECONFIG": str(KUBECONFIG), "MY_POD_NAMESPACE": OPERATOR_NAMESPACE},
    )
    # In a cluster a Secret volume mounts the certificate; out of cluster, copy it once.
    secret_path = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets/{OPERATOR_SECRET}"

    def certs_copied() -> bool:
        data = (api.ok("GET", secret_path) or {}).get("data") or {}
        if not {"tls.crt", "tls.key"} <= data.keys():
            return False
        OPERATOR_CERT_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("tls.key", "tls.crt"):  # tls.crt last: the operator polls for it
            tmp = OPERATOR_CERT_DIR / f".{name}.tmp"
            tmp.write_bytes(base64.b64decode(data[name]))
            tmp.replace(OPERATOR_CERT_DIR / name)
        return True

    wait_until(state, "training-operator", certs_copied, "the webhook certificate Secret")
    port = state.ports["training-operator-health"]
    wait_until(
        state,
        "training-operator",
        lambda: http_ok(f"http://127.0.0.1:{port}/readyz"),
        "training-operator /readyz",
        timeout=120,
    )


def nodes_ready(api: Api) -> bool:
    items = api.ok("GET", "/api/v1/nodes")["items"]
    ready = [
        n
        for n in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (n.get("status") or {}).get("conditions") or []
        )
    ]
    return len(items) > 0 and len(ready) == len(items)


def crd_established(api: Api) -> bool:
    crd = api.ok("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{TFJOB_CRD}")
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


# What every container "logs": KWOK runs no process, but serves this file (CRI log format) as
# the log of each container, following it like a kubelet does, so log streaming is testable.
POD_LOG_LINES = (
    "kwok: this container runs no process; its log is the test cluster's pod.log",
    "kwok: every container of every pod shows these same lines",
)


def write_pod_logs(run: Path) -> Path:
    """Write the shared pod log and the KWOK ClusterLogs config serving it; return the config."""
    log_file = run / "pod.log"
    log_file.write_text(
        "".join(
            f"2026-01-01T00:00:0{i}.000000000Z stdout F {line}\n"
            for i, line in enumerate(POD_LOG_LINES)
        )
    )
    config = run / "kwok-logs.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "ClusterLogs",
                "metadata": {"name": "pod-log"},
                "spec": {"logs": [{"logsFile": str(log_file), "follow": True}]},
            }
        )
    )
    return config


def configmap(info: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "landmarks-test-cluster", "namespace": "kube-public"},
        "data": info,
    }


def down() -> None:
    state = State.load()
    if state is None:
        log("not running (no state file)")
        return
    stop(state)
    if "training-operator" in state.pids:  # the certificate files `up` copied out of the Secret
        for name in ("tls.crt", "tls.key"):
            (OPERATOR_CERT_DIR / name).unlink(missing_ok=True)
    STATE.unlink(missing_ok=True)
    log("down")


def status() -> int:
    state = State.load()
    if state is None:
        log("not running")
        return 1
    bad = healthy(state)
    for name in COMPONENTS:
        if name in state.pids:
            health = "UNHEALTHY" if name in bad else "ok"
            log(f"{name:24} pid {state.pids[name]:<8} {health}")
        elif name in state.notes:
            log(f"{name:24} {state.notes[name]}")
    log(f"kubeconfig: {KUBECONFIG}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "kubeconfig"])
    args = parser.parse_args(argv)
    ROOT.mkdir(parents=True, exist_ok=True)
    lock = open(ROOT / "run.lock", "w")  # noqa: SIM115 - held until the process exits
    fcntl.flock(lock, fcntl.LOCK_EX)  # one `up` or `down` at a time per machine
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        elif args.command == "status":
            return status()
        else:
            state = State.load()
            if state is None or healthy(state):
                log("the test cluster is not up (make test-cluster-up)")
                return 1
            print(KUBECONFIG)
    except ClusterError as err:
        log(f"error: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
