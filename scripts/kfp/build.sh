#!/usr/bin/env bash
# Builds the Kubeflow Pipelines backend the project's manifests pin, with the machine's Go, once
# per machine, and makes images of it for kind; nothing of KFP is copied into this repository.
#
#   usage: scripts/kfp/build.sh [--src KFP_SRC] [COMPONENT...]         build (default: all)
#          scripts/kfp/build.sh [--src KFP_SRC] images [COMPONENT...]  build, then images
#          scripts/kfp/build.sh source       clone KFP at the pinned tag into the default KFP_SRC
#          scripts/kfp/build.sh --bin COMPONENT        print its bin folder (builds nothing)
#          scripts/kfp/build.sh --print-ref COMPONENT  print its image reference
#          scripts/kfp/build.sh [--src KFP_SRC] --print-src   print the checkout it would use
#   COMPONENT, from the KFP source (KFP_SRC, a checkout of kubeflow/pipelines at the pinned tag):
#              api-server, persistence-agent, scheduled-workflow, driver, launcher
#            from the Go module proxy (Argo Workflows, pinned in versions.env):
#              workflow-controller, argoexec
#   env: KFP_SRC (default $LANDMARKS_CACHE/kfp-src/pipelines-<version>, where `source` clones),
#        KFP_GIT_URL (what `source` clones, default versions.env's: GitHub),
#        LANDMARKS_CACHE (default ~/.cache/landmarks), KFP_DEBIAN_BASE (the base of the images
#        that need a shell: default the Debian stand-in of scripts/images/standin-bases.sh).
#
# The KFP version is the `?ref=` of manifests/kfp/kustomization.yaml. The Go module proxy does not
# serve github.com/kubeflow/pipelines, so its binaries build inside a source checkout (its go.mod's
# dependencies do come from the proxy); the checkout's VERSION file must equal the pin. Argo's
# module is served, but its zip lacks workflow/executor/osspecific/signal_linux.go (in the
# repository a symlink to signal_darwin.go; module zips drop symlinks), so argoexec does not
# compile from it as is: the module is copied into the cache (src/), that one file restored from
# signal_darwin.go there, and both Argo binaries built in that copy.
#
# Each component lands in $LANDMARKS_CACHE/kfp/<component>-<version>/bin with its build log,
# wall time (build-seconds) and source (commit) beside it; a finished one is never rebuilt
# (delete its folder to force it). Everything is static and CGO_ENABLED=0, except the API server
# (cgo for go-sqlite3, linked statically: it needs gcc and glibc's static libc). Images are
# landmarks-kfp/<component>:<version>, built with the classic builder from scripts/kfp/*.Dockerfile:
# FROM scratch where upstream's image only runs the binary, the Debian stand-in where upstream's
# command needs /bin/sh (api-server, persistence-agent, scheduled-workflow). Image refs go to
# stdout, progress to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
git_url="${KFP_GIT_URL:-}" # the environment may name a mirror
# shellcheck disable=SC1091 # KEY=VALUE pins only
source "$HERE/versions.env"
KFP_GIT_URL="${git_url:-$KFP_GIT_URL}"
CACHE="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}"
ROOT="$CACHE/kfp"
PIN_FILE="$REPO_ROOT/manifests/kfp/kustomization.yaml"
IMAGE_REPO=landmarks-kfp
export DOCKER_BUILDKIT=0 # the classic builder: BuildKit is not everywhere

log() { printf '%s kfp-build: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'kfp-build: error: %s\n' "$*" >&2
  exit 1
}

KFP_VERSION="$(sed -n 's#^.*github\.com/kubeflow/pipelines//[^?]*?ref=\([^&[:space:]]*\).*$#\1#p' "$PIN_FILE" | head -n 1)"
[[ -n "$KFP_VERSION" ]] || die "no '?ref=' of github.com/kubeflow/pipelines in $PIN_FILE"

KFP_COMPONENTS=(api-server persistence-agent scheduled-workflow driver launcher)
ARGO_COMPONENTS=(workflow-controller argoexec)
declare -A VERSION BINARY PACKAGE
for c in "${KFP_COMPONENTS[@]}"; do VERSION[$c]="$KFP_VERSION"; done
for c in "${ARGO_COMPONENTS[@]}"; do VERSION[$c]="$ARGO_WORKFLOWS_VERSION"; done
# The binaries keep upstream's names: KFP's compiler runs `driver` and `launcher-v2` by name
# (backend/src/v2/compiler/argocompiler/container.go), Argo runs `argoexec`, and upstream's
# commands name the others.
BINARY=(
  [api-server]=apiserver [persistence-agent]=persistence_agent [scheduled-workflow]=controller
  [driver]=driver [launcher]=launcher-v2
  [workflow-controller]=workflow-controller [argoexec]=argoexec
)
# Packages as upstream's Dockerfiles build them (backend/Dockerfile*, Argo's Makefile).
PACKAGE=(
  [api-server]=./backend/src/apiserver [persistence-agent]=./backend/src/agent/persistence
  [scheduled-workflow]=./backend/src/crd/controller/scheduledworkflow
  [driver]=./backend/src/v2/cmd/driver [launcher]=./backend/src/v2/cmd/launcher-v2
  [workflow-controller]=./cmd/workflow-controller [argoexec]=./cmd/argoexec
)

is_kfp() { [[ " ${KFP_COMPONENTS[*]} " == *" $1 "* ]]; }
bin_dir() { echo "$ROOT/$1-${VERSION[$1]}/bin"; }
image_ref() { echo "$IMAGE_REPO/$1:${VERSION[$1]}"; }
known() { [[ -n "${VERSION[${1:-}]:-}" ]] || die "unknown component '${1:-}' (one of: ${KFP_COMPONENTS[*]} ${ARGO_COMPONENTS[*]})"; }

ARGS=("$@") # for the re-exec at low priority
src="${KFP_SRC:-}"
mode=build
components=()
while (($#)); do
  case "$1" in
    --src) src="${2:?--src needs a folder}" && shift 2 ;;
    --src=*) src="${1#--src=}" && shift ;;
    --bin) known "${2:-}" && bin_dir "$2" && exit 0 ;;
    --print-ref) known "${2:-}" && image_ref "$2" && exit 0 ;;
    --print-src) mode=print-src && shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" && exit 0 ;;
    images | source) mode="$1" && shift ;;
    -*) die "unknown option '$1' (see $0 --help)" ;;
    *) known "$1" && components+=("$1") && shift ;;
  esac
done
src="${src:-$CACHE/kfp-src/pipelines-$KFP_VERSION}"
((${#components[@]})) || components=("${KFP_COMPONENTS[@]}" "${ARGO_COMPONENTS[@]}")

# Clones KFP at the pinned tag (a shallow clone, about 100 MB) where the build looks by default.
clone_source() {
  if [[ -f "$src/VERSION" ]]; then
    log "KFP source already at $src ($(tr -d '[:space:]' <"$src/VERSION"))"
    return
  fi
  command -v git >/dev/null || die "git is needed to clone $KFP_GIT_URL"
  mkdir -p "$(dirname "$src")"
  log "cloning $KFP_GIT_URL at $KFP_VERSION into $src"
  git -c advice.detachedHead=false clone --quiet --depth 1 --branch "$KFP_VERSION" "$KFP_GIT_URL" "$src.part" >&2
  mv "$src.part" "$src"
}

# A KFP checkout at the pinned version, whose go.mod names the pinned Argo Workflows.
check_source() {
  [[ -f "$src/go.mod" && -d "$src/backend/src/apiserver" ]] \
    || die "no KFP source at '$src': pass --src or KFP_SRC (a checkout of kubeflow/pipelines at tag $KFP_VERSION), or run '$0 source'"
  local version argo
  version="$(tr -d '[:space:]' <"$src/VERSION" 2>/dev/null || true)"
  [[ "$version" == "$KFP_VERSION" ]] \
    || die "the KFP source at $src is version '$version'; $PIN_FILE pins $KFP_VERSION (git -C $src checkout $KFP_VERSION)"
  argo="$(sed -n "s#^\s*\(require\s\+\)\{0,1\}$ARGO_WORKFLOWS_MODULE \(v[^ ]*\).*#\2#p" "$src/go.mod" | head -n 1)"
  [[ "$argo" == "$ARGO_WORKFLOWS_VERSION" ]] \
    || die "KFP $KFP_VERSION's go.mod requires Argo Workflows '$argo', scripts/kfp/versions.env pins $ARGO_WORKFLOWS_VERSION: update the pin"
}

source_commit() { git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown; }

build_kfp() { # $1: component, $2: output bin dir
  local cgo=0 tags=netgo extldflags=""
  if [[ "$1" == api-server ]]; then
    # backend/src/apiserver/storage/db.go uses sqlite3.Error and sqlite3.ErrConstraint of
    # github.com/mattn/go-sqlite3, declared only in its cgo files (error.go imports "C"), so the
    # API server needs cgo (upstream's backend/Dockerfile builds it with cgo, dynamically). Here
    # it is linked statically (glibc's libc.a, no NSS: netgo, osusergo; no dlopen:
    # sqlite_omit_load_extension), so it runs on any base.
    command -v "${CC:-gcc}" >/dev/null || { echo "the API server needs a C compiler (cgo, go-sqlite3): install gcc"; return 1; }
    cgo=1 tags=netgo,osusergo,sqlite_omit_load_extension extldflags="-extldflags=-static"
  fi
  # Each step checks its own status: the caller tests this function's (with ||), which turns
  # off errexit inside it.
  cd "$src" || return 1
  # -buildvcs=false: a checkout owned by another user would make `go` stop at git's ownership check.
  CGO_ENABLED=$cgo go build -mod=readonly -buildvcs=false -v -trimpath -tags "$tags" \
    -ldflags "-s -w $extldflags" -o "$2/${BINARY[$1]}" "${PACKAGE[$1]}" || return 1
  if [[ "$1" == api-server ]]; then
    # Upstream's image has the default configuration at /config (viper reads config.json there).
    mkdir -p "$2/config" && cp "$src/backend/src/apiserver/config/config.json" "$2/config/" || return 1
  fi
}

# The Argo module copied out of the module cache, with the file its zip lacks restored; prepared
# once per version (both Argo components build in it), under its own lock.
argo_source() {
  local dir="$ROOT/src/argo-workflows-$ARGO_WORKFLOWS_VERSION" module signal
  mkdir -p "$ROOT/src"
  exec 8>"$dir.lock"
  flock 8
  if [[ ! -f "$dir/.landmarks-prepared" ]]; then
    module="$(cd / && go mod download -json "$ARGO_WORKFLOWS_MODULE@$ARGO_WORKFLOWS_VERSION" |
      sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
    [[ -f "$module/go.mod" ]] || { log "no module folder for $ARGO_WORKFLOWS_MODULE@$ARGO_WORKFLOWS_VERSION"; return 1; }
    rm -rf "$dir" && cp -r "$module" "$dir" && chmod -R u+w "$dir" || return 1
    signal="$dir/workflow/executor/osspecific/signal_linux.go"
    if [[ ! -f "$signal" ]]; then
      # Upstream's signal_linux.go is a symlink to signal_darwin.go (the same POSIX calls).
      cp "$dir/workflow/executor/osspecific/signal_darwin.go" "$signal" || return 1
      echo "workflow/executor/osspecific/signal_linux.go: copied from signal_darwin.go" >"$dir/.landmarks-patched"
    fi
    touch "$dir/.landmarks-prepared" || return 1
  fi
  exec 8>&-
  echo "$dir"
}

build_argo() { # $1: component, $2: output bin dir
  local dir pkg=github.com/argoproj/argo-workflows/v4 ldflags
  dir="$(argo_source)" || return 1
  cat "$dir/.landmarks-patched" 2>/dev/null || true
  cd "$dir" || return 1
  # The version strings Argo's Makefile sets (argo version, the controller's log line).
  ldflags="-s -w -X $pkg.version=$ARGO_WORKFLOWS_VERSION -X $pkg.gitTag=$ARGO_WORKFLOWS_VERSION"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  go build -mod=readonly -buildvcs=false -v -trimpath -ldflags "$ldflags" \
    -o "$2/${BINARY[$1]}" "${PACKAGE[$1]}"
}

# Prints a line a minute while a long build runs (go -v logs each package it compiles). Its
# sleep is killed with it and holds none of the script's outputs, so a caller that reads them
# (a test, $(...)) sees their end as soon as the build ends.
heartbeat() { # $1: component, $2: log file
  local nap
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  while true; do
    sleep 60 >/dev/null 2>&1 &
    nap=$!
    wait "$nap"
    log "$1: still building ($(wc -l <"$2") packages so far, log: $2)"
  done
}

build() { # $1: component
  local name="$1" bin dir start pid rc=0
  bin="$(bin_dir "$name")"
  dir="$(dirname "$bin")"
  if [[ -x "$bin/${BINARY[$name]}" ]]; then
    log "$name ${VERSION[$name]}: cached in $bin"
    return 0
  fi
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9 # another build of it may have finished while this one waited
  if [[ -x "$bin/${BINARY[$name]}" ]]; then
    log "$name ${VERSION[$name]}: built meanwhile in $bin"
    return 0
  fi
  log "$name ${VERSION[$name]}: building (log: $dir/build.log)"
  rm -rf "$bin.tmp" && mkdir -p "$bin.tmp"
  start=$SECONDS
  heartbeat "$name" "$dir/build.log" &
  pid=$!
  if is_kfp "$name"; then
    (build_kfp "$name" "$bin.tmp") >"$dir/build.log" 2>&1 || rc=$?
    echo "kubeflow/pipelines $KFP_VERSION $(source_commit) ($src)" >"$dir/source"
  else
    (build_argo "$name" "$bin.tmp") >"$dir/build.log" 2>&1 || rc=$?
    echo "$ARGO_WORKFLOWS_MODULE@$ARGO_WORKFLOWS_VERSION (Go module proxy)" >"$dir/source"
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if ((rc == 0)) && [[ ! -x "$bin.tmp/${BINARY[$name]}" ]]; then
    echo "no ${BINARY[$name]} after the build" >>"$dir/build.log"
    rc=1
  fi
  if ((rc != 0)); then
    log "$name: FAILED after $((SECONDS - start))s; last lines of $dir/build.log:"
    tail -n 15 "$dir/build.log" >&2
    return 1
  fi
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
  echo "$((SECONDS - start))" >"$dir/build-seconds"
  log "$name ${VERSION[$name]}: built in $((SECONDS - start))s -> $bin"
}

# shellcheck source=scripts/kfp/debian-base.sh
source "$HERE/debian-base.sh"

image() { # $1: component
  local name="$1" ref bin context start args=()
  ref="$(image_ref "$name")"
  bin="$(bin_dir "$name")"
  context="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: context is local
  trap "rm -rf '$context'" RETURN
  cp "$bin/${BINARY[$name]}" "$context/"
  # The scratch images' /tmp, mode 1777 (FROM scratch has none): `COPY rootfs/ /` keeps the
  # modes of what is inside rootfs/ (a copied folder itself would become 0755).
  mkdir -p "$context/rootfs" && mkdir -m 1777 "$context/rootfs/tmp"
  case "$name" in
    api-server | persistence-agent | scheduled-workflow) args+=(--build-arg "BASE_IMAGE=$(debian_base)") ;;
  esac
  if [[ "$name" == api-server ]]; then
    cp -r "$bin/config" "$context/config"
    args+=(--build-arg "TAG_NAME=$KFP_VERSION")
    args+=(--build-arg "COMMIT_SHA=$(awk '{print $3}' "$(dirname "$bin")/source")")
  fi
  start=$SECONDS
  docker build --quiet -t "$ref" "${args[@]}" \
    --label "org.opencontainers.image.version=${VERSION[$name]}" \
    --label "org.opencontainers.image.description=$(cat "$(dirname "$bin")/source")" \
    -f "$HERE/$name.Dockerfile" "$context" >/dev/null
  log "image $ref: built in $((SECONDS - start))s ($(docker image inspect --format '{{.Size}}' "$ref" | awk '{printf "%.1f MB", $1/1e6}'))"
  echo "$ref"
}

if [[ "$mode" == print-src ]]; then
  echo "$src"
  exit 0
fi
if [[ "$mode" == source ]]; then
  clone_source
  exit 0
fi

if [[ "$(nice)" == 0 && -z "${KFP_BUILD_RENICED:-}" ]]; then
  KFP_BUILD_RENICED=1 exec nice -n 10 "$0" "${ARGS[@]}" # the machine is shared
fi
for c in "${components[@]}"; do
  if is_kfp "$c"; then
    check_source
    break
  fi
done
command -v go >/dev/null || die "Go is not installed (the KFP backend and Argo are compiled from source; install Go >= 1.26)"
[[ "$mode" != images ]] || command -v docker >/dev/null || die "docker is needed for images"
export CGO_ENABLED=0

failed=()
for c in "${components[@]}"; do
  if (build "$c"); then
    [[ "$mode" != images ]] || (image "$c") || failed+=("$c (image)")
  else
    failed+=("$c")
  fi
done
if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
