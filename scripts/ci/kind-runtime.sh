#!/usr/bin/env bash
# CI only: lets the Docker engine run privileged containers (kind's nodes) on a machine whose
# root lacks CAP_SYS_RESOURCE, as on the VMs CI runs on. There runc cannot grant a privileged
# container every capability and fails with "unable to apply caps: operation not permitted".
#   - The check reads the engine's capability bounding set (/proc/<dockerd>/status, CapBnd):
#     when CAP_SYS_RESOURCE (bit 24) is there, nothing is needed and nothing is done.
#   - Else it installs scripts/ci/runc-drop-sys-resource as /usr/local/sbin/landmarks-runc,
#     registers it in /etc/docker/daemon.json as a runtime and makes it the default (kind cannot
#     choose a runtime per container), and has dockerd reload its configuration (SIGHUP: running
#     containers are untouched); if the engine does not take it, dockerd is restarted through
#     scripts/ci/docker-engine.sh.
# It says what it did. Never run it on a developer's machine: Docker there has all capabilities.
#   usage: scripts/ci/kind-runtime.sh [--check]   (--check: report only, exit 1 when needed)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUNTIME=landmarks-runc
WRAPPER=/usr/local/sbin/$RUNTIME
DAEMON_JSON="${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}"
CAP_SYS_RESOURCE=24

log() { printf 'kind-runtime: %s\n' "$*"; }
die() {
  printf 'kind-runtime: error: %s\n' "$*" >&2
  exit 1
}

dockerd_pid() { pgrep -xo dockerd || true; }

# 0 when the engine's processes may hold CAP_SYS_RESOURCE (then privileged containers work).
engine_has_sys_resource() {
  local pid capbnd
  pid="$(dockerd_pid)"
  [[ -n "$pid" ]] || pid=self # no local dockerd (a remote engine): judge by this machine
  capbnd="$(sed -n 's/^CapBnd:\s*//p' "/proc/$pid/status")"
  (((16#$capbnd >> CAP_SYS_RESOURCE) & 1))
}

default_runtime() { docker info --format '{{.DefaultRuntime}}' 2>/dev/null || echo unknown; }

if engine_has_sys_resource; then
  log "the engine holds CAP_SYS_RESOURCE: privileged containers work as they are; nothing to do"
  exit 0
fi
if [[ "$(default_runtime)" == "$RUNTIME" ]]; then
  log "root lacks CAP_SYS_RESOURCE; the engine already runs $RUNTIME by default: nothing to do"
  exit 0
fi
if [[ "${1:-}" == --check ]]; then
  log "root lacks CAP_SYS_RESOURCE and the engine's default runtime is $(default_runtime): kind needs $RUNTIME"
  exit 1
fi
[[ "$(id -u)" == 0 ]] || die "root lacks CAP_SYS_RESOURCE; installing the runtime wrapper needs root"
command -v jq >/dev/null || {
  log "installing jq (apt-get): the wrapper edits runc's JSON with it"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
}
[[ -n "$(dockerd_pid)" ]] || die "no local dockerd: start it first (scripts/ci/docker-engine.sh)"

real_runc="$(command -v runc)" || die "no runc on PATH"
log "root lacks CAP_SYS_RESOURCE: installing $WRAPPER (drops it from runc's specs, then runs $real_runc)"
sed "s#^REAL_RUNC=.*#REAL_RUNC=\"\${LANDMARKS_REAL_RUNC:-$real_runc}\"#" \
  "$HERE/runc-drop-sys-resource" >"$WRAPPER.tmp"
chmod 0755 "$WRAPPER.tmp" && mv "$WRAPPER.tmp" "$WRAPPER"

mkdir -p "$(dirname "$DAEMON_JSON")"
[[ -s "$DAEMON_JSON" ]] || echo '{}' >"$DAEMON_JSON"
cp "$DAEMON_JSON" "$DAEMON_JSON.before-$RUNTIME"
jq --arg name "$RUNTIME" --arg path "$WRAPPER" \
  '.runtimes[$name] = {path: $path} | .["default-runtime"] = $name' \
  "$DAEMON_JSON.before-$RUNTIME" >"$DAEMON_JSON"
log "registered $RUNTIME as the default runtime in $DAEMON_JSON (previous: $DAEMON_JSON.before-$RUNTIME)"

kill -HUP "$(dockerd_pid)"
for _ in $(seq 1 20); do
  [[ "$(default_runtime)" == "$RUNTIME" ]] && break
  sleep 0.5
done
if [[ "$(default_runtime)" != "$RUNTIME" ]]; then
  pid="$(dockerd_pid)"
  log "dockerd (pid $pid) did not reload the runtime: restarting it"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  ! kill -0 "$pid" 2>/dev/null || die "dockerd (pid $pid) did not stop within 60 s"
  "$HERE/docker-engine.sh"
fi
[[ "$(default_runtime)" == "$RUNTIME" ]] || die "the engine's default runtime is $(default_runtime), not $RUNTIME"
log "the engine's default runtime is now $RUNTIME"
