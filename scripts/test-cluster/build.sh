#!/usr/bin/env bash
# Builds the pinned binaries of the local test cluster with the machine's Go, once per machine.
#
#   usage: scripts/test-cluster/build.sh [COMPONENT...]
#          COMPONENT: training-operator, etcd, kwok, kubernetes (default: these, in that order),
#                     kubernetes-node (kubelet, kubeadm, kube-proxy, kubectl: for kind's node image)
#
# Each component lands in $LANDMARKS_CACHE/test-cluster/<component>-<version>/bin (the cache
# defaults to ~/.cache/landmarks), with its build log and wall time beside it. A finished
# component is never rebuilt; delete its folder to force it. No registry ships these binaries,
# so they are compiled from the Go module proxy:
#   - training-operator and kwok have no replace directives: plain `go install module/cmd@version`.
#   - etcd's and Kubernetes' own go.mod files replace their sub-modules with local paths, which
#     `go install` refuses, so each is built from a small wrapper module generated in the cache
#     (src/) that requires the upstream module and, for Kubernetes, points every staging module
#     at its published v0.Y.Z tag.
# The training-operator is built first: when a module it needs is not served, the rest of the
# cluster still builds and the error is kept in its build.log (and printed).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091 # versions.env holds only KEY=VALUE pins
source "$HERE/versions.env"
ROOT="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}/test-cluster"

log() { printf '%s build: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v go >/dev/null; then
  log "SKIP: Go is not installed (the test cluster is compiled from Go modules; install Go >= 1.26)"
  exit 0
fi
# The machine is shared: compile at low priority (children inherit the niceness).
if [[ "$(nice)" == 0 && -z "${TEST_CLUSTER_RENICED:-}" ]]; then
  TEST_CLUSTER_RENICED=1 exec nice -n 10 "$0" "$@"
fi
export CGO_ENABLED=0

# Component -> version and the binaries that prove a finished build.
declare -A VERSION=(
  [training-operator]="$TRAINING_OPERATOR_VERSION" [etcd]="$ETCD_VERSION"
  [kwok]="$KWOK_VERSION" [kubernetes]="$KUBERNETES_VERSION"
  [kubernetes-node]="$KUBERNETES_VERSION"
)
declare -A BINARIES=(
  [training-operator]="training-operator.v1" [etcd]="etcd" [kwok]="kwok"
  [kubernetes]="kube-apiserver kube-controller-manager kube-scheduler"
  [kubernetes-node]="kubelet kubeadm kube-proxy kubectl"
)

build_training_operator() { # $1: output bin dir
  GOBIN="$1" go install -v -trimpath -ldflags "-s -w" \
    "$TRAINING_OPERATOR_MODULE/cmd/training-operator.v1@$TRAINING_OPERATOR_VERSION"
}

build_kwok() {
  GOBIN="$1" go install -v -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_etcd() {
  local src
  src="$(dirname "$1")/src"
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  # etcd's own server/main.go is exactly this: a thin main over the real entry point.
  cat >main.go <<'GO'
// Wrapper so etcd builds from the module proxy: etcd's go.mod has replace directives.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod init landmarks.local/test-cluster/etcd
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -mod=mod -v -trimpath -ldflags "-s -w" -o "$1/etcd" .
}

# Generates, in the current folder, the wrapper module that builds Kubernetes' commands at
# $KUBERNETES_VERSION ($1: the module's name; the remaining arguments: the commands it records).
kubernetes_wrapper_module() {
  local name="$1" upstream_mod staging cmd
  shift
  upstream_mod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$upstream_mod" ]] || { log "no go.mod for k8s.io/kubernetes@$KUBERNETES_VERSION"; return 1; }
  staging="v0.${KUBERNETES_VERSION#v1.}"
  go mod init "$name"
  # The main module decides the language version and runtime defaults (godebug), so copy them.
  go mod edit -go="$(sed -n 's/^go \(.*\)$/\1/p' "$upstream_mod")"
  while read -r setting; do go mod edit -godebug="$setting"; done \
    < <(sed -n 's/^godebug \(.*\)$/\1/p' "$upstream_mod")
  # Every `k8s.io/X => ./staging/src/k8s.io/X` of this exact version becomes k8s.io/X@v0.Y.Z.
  while read -r mod; do go mod edit -replace="$mod=$mod@$staging"; done \
    < <(sed -n 's#^\s*\(k8s\.io/[^ ]*\) => \./staging/src/.*$#\1#p' "$upstream_mod")
  go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
  {
    printf '//go:build tools\n\n// Records the commands this module builds; never compiled.\n'
    printf 'package tools\n\nimport (\n'
    for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } >tools.go
}

# Builds Kubernetes commands ($3...) into $1 from a fresh wrapper module $2 beside $1 (src/).
build_kubernetes_commands() {
  local out="$1" name="$2" src minor cmd pkgs=()
  shift 2
  src="$(dirname "$out")/src"
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  kubernetes_wrapper_module "landmarks.local/test-cluster/$name" "$@"
  minor="$(cut -d. -f2 <<<"$KUBERNETES_VERSION")"
  # Without these the binaries report v0.0.0-master, which version-parsing clients reject.
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1"
  ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for cmd in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  # One invocation: the commands share most packages, which then compile once.
  go build -mod=mod -v -trimpath -ldflags "$ldflags" -o "$out/" "${pkgs[@]}"
}

build_kubernetes() {
  build_kubernetes_commands "$1" kubernetes kube-apiserver kube-controller-manager kube-scheduler
}

# What a kind node runs (scripts/kind/): same module, same version, same flags.
build_kubernetes_node() {
  build_kubernetes_commands "$1" kubernetes-node kubelet kubeadm kube-proxy kubectl
}

# Prints a line a minute while a long build runs (go -v logs each package it compiles).
heartbeat() { # $1: component, $2: log file
  while sleep 60; do
    log "$1: still building ($(wc -l <"$2") modules and packages so far, log: $2)"
  done
}

build() { # $1: component
  local name="$1" version="${VERSION[$1]}" dir bin ok=1
  dir="$ROOT/$name-$version"
  bin="$dir/bin"
  for b in ${BINARIES[$name]}; do [[ -x "$bin/$b" ]] || ok=0; done
  if ((ok)); then
    log "$name $version: cached in $bin"
    return 0
  fi
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9 # two builds of the same component would write the same folder
  log "$name $version: building (log: $dir/build.log)"
  rm -rf "$bin.tmp" && mkdir -p "$bin.tmp"
  local start=$SECONDS pid rc=0
  heartbeat "$name" "$dir/build.log" &
  pid=$!
  ("build_${name//-/_}" "$bin.tmp") >"$dir/build.log" 2>&1 || rc=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if ((rc != 0)); then
    log "$name $version: FAILED after $((SECONDS - start))s; last lines of $dir/build.log:"
    tail -n 15 "$dir/build.log" >&2
    exec 9>&-
    return 1
  fi
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
  echo "$((SECONDS - start))" >"$dir/build-seconds"
  log "$name $version: built in $((SECONDS - start))s -> $bin"
  exec 9>&-
}

components=("$@")
((${#components[@]})) || components=(training-operator etcd kwok kubernetes)
failed=()
for c in "${components[@]}"; do
  [[ -n "${VERSION[$c]:-}" ]] || { log "unknown component '$c' (one of: ${!VERSION[*]})"; exit 2; }
  (build "$c") || failed+=("$c")
done
if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
