#!/usr/bin/env bash
# The images KFP's deployments need beside its Go backend (scripts/kfp/build.sh), built here
# from Debian's packages and PyPI because their upstream images cannot be pulled:
#   mariadb      landmarks-kfp/mariadb:<MARIADB_VERSION>  Debian's MariaDB (mariadb.Dockerfile),
#                instead of mysql:8.4
#   netcat       landmarks-kfp/netcat:bookworm  the `nc -z` of the deployments' wait-for init
#                containers, instead of docker.io/alpine
#   mlmd-server  landmarks-kfp/mlmd-server:<MLMD_VERSION>  ML Metadata's gRPC API served by the
#                ml-metadata wheel (mlmd_server.py), instead of ml_metadata_store_server
#
#   usage: scripts/kfp/support-images.sh [--force] [--print-ref NAME] [NAME...]
#   Builds the named images (default: all) that are missing (--force: all named), prints their
#   refs on stdout, progress on stderr. env: KFP_DEBIAN_BASE (default: the Debian stand-in of
#   scripts/images/standin-bases.sh), PYTHON (the project's Python, for that stand-in).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck disable=SC1091 # KEY=VALUE pins only
source "$HERE/versions.env"
export DOCKER_BUILDKIT=0 # the classic builder: BuildKit is not everywhere

log() { printf '%s kfp-support: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'kfp-support: error: %s\n' "$*" >&2
  exit 1
}

NAMES=(mariadb netcat mlmd-server)
ref_of() {
  case "$1" in
    mariadb) echo "landmarks-kfp/mariadb:$MARIADB_VERSION" ;;
    netcat) echo "landmarks-kfp/netcat:bookworm" ;;
    mlmd-server) echo "landmarks-kfp/mlmd-server:${MLMD_VERSION:?MLMD_VERSION is not in versions.env}" ;;
    *) die "unknown image '$1' (one of: ${NAMES[*]})" ;;
  esac
}

# shellcheck source=scripts/kfp/debian-base.sh
source "$HERE/debian-base.sh"

build() { # $1: name
  local name="$1" ref context start args=()
  ref="$(ref_of "$name")"
  if ((!force)) && docker image inspect "$ref" >/dev/null 2>&1; then
    log "$ref exists: reusing it (--force rebuilds)"
    echo "$ref"
    return
  fi
  context="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: context is local
  trap "rm -rf '$context'" RETURN
  args=(--build-arg "BASE_IMAGE=$(debian_base)")
  case "$name" in
    mariadb)
      cp "$HERE/mariadb-entrypoint.sh" "$context/"
      args+=(--build-arg "MARIADB_VERSION=$MARIADB_VERSION")
      ;;
    mlmd-server)
      cp "$HERE/mlmd_server.py" "$context/"
      args+=(--build-arg "MLMD_VERSION=$MLMD_VERSION")
      ;;
  esac
  start=$SECONDS
  log "building $ref"
  docker build --quiet -t "$ref" "${args[@]}" -f "$HERE/$name.Dockerfile" "$context" >/dev/null
  log "image $ref: built in $((SECONDS - start))s ($(docker image inspect --format '{{.Size}}' "$ref" | awk '{printf "%.1f MB", $1/1e6}'))"
  echo "$ref"
}

force=0
names=()
while (($#)); do
  case "$1" in
    --force) force=1 && shift ;;
    --print-ref) ref_of "${2:-}" && exit 0 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" && exit 0 ;;
    -*) die "unknown option '$1' (see $0 --help)" ;;
    *) ref_of "$1" >/dev/null && names+=("$1") && shift ;;
  esac
done
((${#names[@]})) || names=("${NAMES[@]}")
command -v docker >/dev/null || die "docker is needed"
for n in "${names[@]}"; do build "$n"; done
