# shellcheck shell=bash
# Shared by scripts/deploy/*.sh: messages, finding tools, prerequisite checks, kubectl/helm
# wrappers bound to one context. Source it; it defines functions and a few variables only.

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEPLOY_DIR/../.." && pwd)"
# The project's Python (make passes the venv's); it resolves image references and uploads.
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
# Seconds kubectl may spend on one request of the reachability check.
CLUSTER_TIMEOUT="${CLUSTER_TIMEOUT:-5}"

log() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Settings from env.sh (copy scripts/deploy/env.sh.example); the environment and make's
# command line win because the example only sets unset variables.
load_env_file() {
  local file="${LANDMARKS_ENV_FILE:-$REPO_ROOT/env.sh}"
  if [[ -f "$file" ]]; then
    # shellcheck disable=SC1090
    source "$file"
  fi
}

# Prints the path of kubectl or helm: the one on PATH (a platform team's own), else the
# pinned copy of scripts/k8s-tools.sh (set LANDMARKS_PINNED_TOOLS=0 to forbid that).
# On failure prints the reason and returns 1.
find_k8s_tool() {
  local name="$1" dir
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return 0
  fi
  if [[ "${LANDMARKS_PINNED_TOOLS:-1}" == 0 ]]; then
    echo "not on PATH (LANDMARKS_PINNED_TOOLS=0 forbids the pinned copy)"
    return 1
  fi
  if ! dir="$("$REPO_ROOT/scripts/k8s-tools.sh" 2>&1)"; then
    echo "not on PATH, and the pinned copy could not be installed: ${dir##*$'\n'}"
    return 1
  fi
  echo "$dir/$name"
}

# Install hints, one per tool the targets need.
hint() {
  case "$1" in
    docker) echo "install Docker Engine or Docker Desktop (https://docs.docker.com/get-docker/); kind and make images need it" ;;
    kind) echo "install kind v0.31.0 or later (go install sigs.k8s.io/kind@v0.31.0, or a release binary), or build the pinned one: export PATH=\"\$(scripts/kind/build.sh --bin kind):\$PATH\" after scripts/kind/build.sh kind; manifests/kind-cluster.yaml is written for it" ;;
    kubectl) echo "install kubectl 1.30 or later (https://kubernetes.io/docs/tasks/tools/), or put scripts/k8s-tools.sh's on PATH: export PATH=\"\$(scripts/k8s-tools.sh):\$PATH\"" ;;
    helm) echo "install helm 3.14 or later, v4 works too (https://helm.sh/docs/intro/install/), or put scripts/k8s-tools.sh's on PATH" ;;
    git) echo "install git: kubectl fetches the pinned upstream overlays in manifests/ with it" ;;
    *) echo "install $1" ;;
  esac
}

# Kubernetes tools bound to $KUBE_CONTEXT when it is set, so a deploy cannot drift to
# whatever context the shell happens to have.
KUBECTL_BIN=""
HELM_BIN=""
kube() {
  if [[ -n "${KUBE_CONTEXT:-}" ]]; then
    "$KUBECTL_BIN" --context "$KUBE_CONTEXT" "$@"
  else
    "$KUBECTL_BIN" "$@"
  fi
}
helm_() {
  if [[ -n "${KUBE_CONTEXT:-}" ]]; then
    "$HELM_BIN" --kube-context "$KUBE_CONTEXT" "$@"
  else
    "$HELM_BIN" "$@"
  fi
}

# check_<name>: prints what it found, or the reason on stderr and returns 1.
check_tool() {
  local name="$1"
  if ! command -v "$name" >/dev/null 2>&1; then
    echo "missing: $name not found on PATH: $(hint "$name")" >&2
    return 1
  fi
  echo "ok: $name ($(command -v "$name"))"
}

check_k8s_tool() {
  local name="$1" found
  if ! found="$(find_k8s_tool "$name")"; then
    echo "missing: $name $found: $(hint "$name")" >&2
    return 1
  fi
  case "$name" in
    kubectl) KUBECTL_BIN="$found" ;;
    helm) HELM_BIN="$found" ;;
  esac
  echo "ok: $name ($found)"
}

check_docker() {
  check_tool docker >/dev/null || return 1
  local out
  # The client alone is not enough: builds and kind need a running daemon.
  if ! out="$(timeout 20 docker info --format '{{.ServerVersion}}' 2>&1)"; then
    echo "missing: docker is installed but its daemon is not reachable (docker info: ${out##*$'\n'}): start Docker (Docker Desktop, or sudo systemctl start docker) or point DOCKER_HOST at a daemon" >&2
    return 1
  fi
  # No buildx check: images/Dockerfile builds with the classic builder (DOCKER_BUILDKIT=0).
  echo "ok: docker daemon $out"
}

check_cluster() {
  if [[ -z "$KUBECTL_BIN" ]]; then
    check_k8s_tool kubectl >/dev/null || {
      echo "missing: cluster: kubectl is needed to reach it: $(hint kubectl)" >&2
      return 1
    }
  fi
  local ctx server out where
  where="KUBECONFIG=${KUBECONFIG:-~/.kube/config}"
  if [[ -n "${KUBE_CONTEXT:-}" ]]; then
    ctx="$KUBE_CONTEXT"
    if ! kube config get-contexts "$ctx" >/dev/null 2>&1; then
      echo "missing: cluster: context '$ctx' (KUBE_CONTEXT) is not in $where: list them with kubectl config get-contexts" >&2
      return 1
    fi
  elif ! ctx="$(kube config current-context 2>/dev/null)" || [[ -z "$ctx" ]]; then
    echo "missing: cluster: no current Kubernetes context in $where: create a cluster (make kind-up) or fetch credentials (gcloud container clusters get-credentials CLUSTER --region REGION), or set KUBE_CONTEXT" >&2
    return 1
  fi
  server="$(kube config view --minify --context "$ctx" -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null || true)"
  # /version is readable by anyone (system:public-info-viewer); Forbidden still means reachable.
  if ! out="$(kube --context "$ctx" --request-timeout="${CLUSTER_TIMEOUT}s" get --raw=/version 2>&1)" \
    && [[ "$out" != *Forbidden* && "$out" != *forbidden* ]]; then
    echo "missing: cluster: cannot reach the API server of context '$ctx' at ${server:-?} within ${CLUSTER_TIMEOUT}s (${out##*$'\n'}): is the cluster running (kind: make kind-up) and is $where the right one?" >&2
    return 1
  fi
  echo "ok: cluster context '$ctx' at $server"
}

# require NAME...: checks every prerequisite named, reports all failures, exits 1 if any.
# Names: docker kind git kubectl helm cluster. kubectl and helm set KUBECTL_BIN / HELM_BIN.
require() {
  local failed=0 name
  for name in "$@"; do
    case "$name" in
      docker) check_docker || failed=1 ;;
      kind | git) check_tool "$name" || failed=1 ;;
      kubectl | helm) check_k8s_tool "$name" || failed=1 ;;
      cluster) check_cluster || failed=1 ;;
      *)
        echo "missing: unknown prerequisite '$name' (known: docker kind git kubectl helm cluster)" >&2
        failed=1
        ;;
    esac
  done
  if ((failed)); then
    echo "error: prerequisites missing (see above)" >&2
    exit 1
  fi
}

# Prints pods and recent events of a namespace: a failed wait explains itself.
diagnose() {
  local ns="$1"
  echo "---- pods in $ns" >&2
  kube -n "$ns" get pods -o wide >&2 || true
  echo "---- recent events in $ns" >&2
  kube -n "$ns" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 25 >&2 || true
}

# Runs the project's config printer: `config value tag`, `config image component`.
config() {
  "$PYTHON" -c 'import sys; from landmarks.config import main; sys.exit(main(sys.argv[1:]))' "$@"
}

# port_forward NS SERVICE PORT: forwards a free local port to the service in the background
# and sets PF_URL (http://127.0.0.1:N) and PF_PID. The caller stops it with stop_port_forward
# (the deploy scripts do it from an EXIT trap, so nothing is left running).
PF_PID=""
PF_URL=""
port_forward() {
  local ns="$1" svc="$2" port="$3" local_port
  local_port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  PF_LOG="$(mktemp)"
  kube -n "$ns" port-forward "svc/$svc" "$local_port:$port" >"$PF_LOG" 2>&1 &
  PF_PID=$!
  PF_URL="http://127.0.0.1:$local_port"
  for _ in $(seq 1 60); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$local_port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$PF_PID" 2>/dev/null; then
      break
    fi
    sleep 0.5
  done
  echo "error: kubectl port-forward to svc/$svc in $ns did not come up: $(tail -n 3 "$PF_LOG")" >&2
  diagnose "$ns"
  stop_port_forward
  return 1
}
stop_port_forward() {
  if [[ -n "$PF_PID" ]]; then
    kill "$PF_PID" 2>/dev/null || true
    wait "$PF_PID" 2>/dev/null || true
    PF_PID=""
  fi
  [[ -n "${PF_LOG:-}" ]] && rm -f "$PF_LOG"
  return 0
}

# Sets KFP_API_URL for an upload: $KFP_HOST, else a port-forward to svc/ml-pipeline.
KFP_API_URL=""
export KFP_API_URL
kfp_api_url() {
  if [[ -n "${KFP_HOST:-}" ]]; then
    KFP_API_URL="$KFP_HOST"
    return 0
  fi
  log "port-forwarding svc/ml-pipeline in ${KFP_NAMESPACE:-kubeflow} for the KFP API"
  port_forward "${KFP_NAMESPACE:-kubeflow}" ml-pipeline 8888 || return 1
  KFP_API_URL="$PF_URL"
}
