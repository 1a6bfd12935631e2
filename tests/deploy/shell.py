"""Runs the real deploy scripts with a controlled PATH, kubeconfig and environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.deploy.conftest import REPO

SCRIPTS = REPO / "scripts" / "deploy"
# What the scripts need besides the tools under test; everything else is left off PATH.
BASE_TOOLS = (
    "bash", "env", "dirname", "cat", "timeout", "tail", "head", "mktemp", "seq", "sed",
    "ls", "tr", "awk", "grep", "rm", "sleep", "wc", "mkdir", "tar", "cp", "mv", "chmod",
)  # fmt: skip


def tool_dir(root: Path, tools: Iterable[str | Path]) -> Path:
    """A bin directory holding links to BASE_TOOLS plus `tools` (names or paths)."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in (*BASE_TOOLS, *tools):
        path = Path(tool) if isinstance(tool, Path) else shutil.which(tool)
        if path is None:
            continue
        link = bin_dir / Path(path).name
        if not link.exists():
            link.symlink_to(path)
    return bin_dir


def run_script(
    script: str,
    *args: str,
    path_dir: Path,
    home: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Runs scripts/deploy/<script> with PATH=path_dir only and a private HOME and cache."""
    full_env = {
        "PATH": str(path_dir),
        "HOME": str(home),
        "LANDMARKS_CACHE": str(home / "cache"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
        "LANDMARKS_ENV_FILE": str(home / "no-env.sh"),
        "PYTHON": str(REPO / ".venv" / "bin" / "python"),
        **(env or {}),
    }
    return subprocess.run(
        [str(path_dir / "bash"), str(SCRIPTS / script), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def kubeconfig(path: Path, server: str, context: str = "test-ctx") -> Path:
    """A kubeconfig whose current context points at `server`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
        "current-context": context,
    }
    path.write_text(json.dumps(config))
    return path


class _VersionHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/version":
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps({"major": "1", "minor": "35", "gitVersion": "v1.35.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def api_server_stub() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering only GET /version like a kube-apiserver."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _VersionHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
