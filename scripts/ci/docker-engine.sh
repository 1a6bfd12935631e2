#!/usr/bin/env bash
# CI only (.ci/run calls it): makes sure a Docker engine answers before the image builds.
#   - an engine that already answers (`docker info`) is left alone;
#   - else dockerd is installed from Debian's docker.io package if it is missing, started in
#     the background as root (log: $DOCKERD_LOG), and waited for, at most $DOCKERD_WAIT_S.
# It says what it did. It changes the machine (apt, a root daemon): it is meant for the CI
# machine, never for a developer's workstation, where Docker is installed the usual way.
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/landmarks-dockerd.log}"
DOCKERD_WAIT_S="${DOCKERD_WAIT_S:-60}"

log() { printf 'docker-engine: %s\n' "$*"; }
die() {
  printf 'docker-engine: error: %s\n' "$*" >&2
  exit 1
}

answers() { docker info >/dev/null 2>&1; }
server_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown; }

if command -v docker >/dev/null && answers; then
  log "an engine already answers (server $(server_version)): leaving it alone"
  exit 0
fi

[[ "$(id -u)" == 0 ]] || die "no Docker engine answers, and starting one needs root (this script is for the CI machine)"

if ! command -v dockerd >/dev/null; then
  log "dockerd is missing: installing Debian's docker.io (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  log "installed $(dockerd --version)"
fi
command -v docker >/dev/null || die "dockerd is installed but there is no docker CLI on PATH"

log "starting dockerd in the background (log: $DOCKERD_LOG)"
# setsid: the daemon outlives this script and the CI step that ran it.
setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
pid=$!
for ((waited = 0; waited < DOCKERD_WAIT_S; waited++)); do
  if answers; then
    log "dockerd (pid $pid) answers after ${waited}s (server $(server_version))"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || die "dockerd exited at start; the end of $DOCKERD_LOG:
$(tail -n 20 "$DOCKERD_LOG")"
  sleep 1
done
die "dockerd (pid $pid) did not answer within ${DOCKERD_WAIT_S}s; the end of $DOCKERD_LOG:
$(tail -n 20 "$DOCKERD_LOG")"
