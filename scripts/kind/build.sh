#!/usr/bin/env bash
# Builds the pinned tools of the offline kind path with the machine's Go, once per machine.
#
#   usage: scripts/kind/build.sh [COMPONENT...]
#          COMPONENT: kind, crictl, coredns (default: all three)
#   prints nothing on stdout; `scripts/kind/build.sh --bin COMPONENT` prints its bin folder.
#
# Each lands in $LANDMARKS_CACHE/kind/<component>-<version>/bin (default ~/.cache/landmarks),
# with its build log and wall time (build-seconds) beside it; a finished one is never rebuilt
# (delete its folder to force it). None of them has replace directives, so plain
# `go install module/cmd@version` from the Go module proxy builds them. The node's Kubernetes
# binaries and etcd come from the test cluster's build (scripts/test-cluster/build.sh), from the
# same wrapper module and pins as the fast tier's control plane.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091 # KEY=VALUE pins only
source "$HERE/../test-cluster/versions.env"
# shellcheck disable=SC1091
source "$HERE/versions.env"
ROOT="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}/kind"

log() { printf '%s kind-build: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

declare -A VERSION=([kind]="$KIND_VERSION" [crictl]="$CRI_TOOLS_VERSION" [coredns]="$COREDNS_VERSION")
declare -A PACKAGE=(
  [kind]="$KIND_MODULE"
  [crictl]="sigs.k8s.io/cri-tools/cmd/crictl"
  [coredns]="github.com/coredns/coredns"
)
# Version strings the tools report (kind's own comes from its tagged module).
declare -A LDFLAGS=(
  [kind]=""
  [crictl]="-X sigs.k8s.io/cri-tools/pkg/version.Version=${CRI_TOOLS_VERSION#v}"
  [coredns]=""
)

bin_dir() { echo "$ROOT/$1-${VERSION[$1]}/bin"; }

if [[ "${1:-}" == --bin ]]; then
  [[ -n "${VERSION[${2:-}]:-}" ]] || { log "usage: $0 --bin kind|crictl|coredns"; exit 2; }
  bin_dir "$2"
  exit 0
fi

command -v go >/dev/null || { log "Go is not installed (these tools are compiled from Go modules; install Go >= 1.26)"; exit 1; }
if [[ "$(nice)" == 0 && -z "${KIND_BUILD_RENICED:-}" ]]; then
  KIND_BUILD_RENICED=1 exec nice -n 10 "$0" "$@" # the machine is shared
fi
export CGO_ENABLED=0

build() { # $1: component
  local name="$1" dir bin start rc=0
  bin="$(bin_dir "$name")"
  dir="$(dirname "$bin")"
  if [[ -x "$bin/$name" ]]; then
    log "$name ${VERSION[$name]}: cached in $bin"
    return 0
  fi
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9 # another build of it may have finished while this one waited
  if [[ -x "$bin/$name" ]]; then
    log "$name ${VERSION[$name]}: built meanwhile in $bin"
    return 0
  fi
  log "$name ${VERSION[$name]}: building (log: $dir/build.log)"
  rm -rf "$bin.tmp" && mkdir -p "$bin.tmp"
  start=$SECONDS
  # Outside any module, so the repository cannot influence the build.
  (cd / && GOBIN="$bin.tmp" go install -v -trimpath -ldflags "-s -w ${LDFLAGS[$name]}" \
    "${PACKAGE[$name]}@${VERSION[$name]}") >"$dir/build.log" 2>&1 || rc=$?
  if ((rc != 0)); then
    log "$name: FAILED after $((SECONDS - start))s; last lines of $dir/build.log:"
    tail -n 15 "$dir/build.log" >&2
    return 1
  fi
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
  echo "$((SECONDS - start))" >"$dir/build-seconds"
  log "$name ${VERSION[$name]}: built in $((SECONDS - start))s -> $bin"
}

components=("$@")
((${#components[@]})) || components=(kind crictl coredns)
for c in "${components[@]}"; do
  [[ -n "${VERSION[$c]:-}" ]] || { log "unknown component '$c' (one of: ${!VERSION[*]})"; exit 2; }
  (build "$c")
done
