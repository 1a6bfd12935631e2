#!/usr/bin/env bash
# The kind targets, for people with Docker: a laptop cluster shaped like GKE with a GPU pool
# (manifests/kind-cluster.yaml; the "GPU" worker has no GPUs, so training runs on CPU).
#   scripts/deploy/kind.sh up     cluster, CPU images built and loaded, artifact store, operator + chart
#   scripts/deploy/kind.sh test   the kind suite (tests/kind) on real pods: up first unless the
#                                 cluster exists, down after unless it did (KEEP=1 keeps it)
#   scripts/deploy/kind.sh kfp    install KFP there and upload the pipeline (a separate step;
#                                 KFP=offline: the backend built here from KFP_SRC)
#   scripts/deploy/kind.sh run    run the pipeline there through KFP (2-worker CPU TFJob), wait
#   scripts/deploy/kind.sh down   delete the cluster
# Settings: KIND_CLUSTER (default landmarks; test: landmarks-test), KIND_CONFIG (default
# manifests/kind-cluster.yaml; test: scripts/kind/test-cluster.yaml),
# KIND_NODE_IMAGE (a node image built offline by scripts/kind/node-image.sh, e.g.
# landmarks-kind/node:v1.36.3; unset: the official kindest/node of KIND_CONFIG),
# KIND_TEST_PARAMS (pipeline arguments NAME=VALUE ...), KIND_TEST_TIMEOUT (seconds),
# GCP_KEY_FILE (a key for gs:// data, optional), TRAINING_OPERATOR=offline (the operator image
# built here and the pinned overlay from the Go module cache: scripts/kind/training-operator.sh),
# ARTIFACT_STORE=seaweedfs|skip (default seaweedfs: KFP's store, as KFP lays it out, until KFP
# itself is installed: scripts/kind/artifact-store.sh).
set -euo pipefail
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env_file

# The suite has its own one-node cluster (scripts/kind/test-cluster.yaml: KWOK fakes the GPU
# pool), so it never runs on, or deletes, the cluster of kind-up.
if [[ "${1:-}" == test ]]; then
  KIND_CLUSTER="${KIND_CLUSTER:-landmarks-test}"
  KIND_CONFIG="${KIND_CONFIG:-$REPO_ROOT/scripts/kind/test-cluster.yaml}"
  HELM_EXTRA_ARGS="-f $REPO_ROOT/scripts/kind/test-values.yaml${HELM_EXTRA_ARGS:+ $HELM_EXTRA_ARGS}"
  export HELM_EXTRA_ARGS
fi
KIND_CLUSTER="${KIND_CLUSTER:-landmarks}"
export KUBE_CONTEXT="kind-$KIND_CLUSTER"
export ENV=kind
# TFJobs on kind run the CPU trainer image (landmarks.config.trainer_role()).
export LANDMARKS_TRAINER_VARIANT=cpu
KFP_NAMESPACE="${KFP_NAMESPACE:-kubeflow}"
TRAINING_NS="${TRAINING_NS:-landmarks-training}"

KIND_CONFIG="${KIND_CONFIG:-$REPO_ROOT/manifests/kind-cluster.yaml}"

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; }

# KIND_CONFIG for an offline node image ($1): every node runs it; kind's own CNI (kindnetd, not
# in the image) is off, the image's static bridge network (scripts/kind/node/) serves pods;
# the kubelet accepts a cgroup v1 host, where it otherwise restarts forever.
offline_config() {
  sed "s#^\(\s*image:\s*\).*#\1$1#" "$KIND_CONFIG"
  cat <<YAML
networking:
  disableDefaultCNI: true
kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
YAML
}

up() {
  require docker kind kubectl helm git
  if cluster_exists; then
    log "kind cluster $KIND_CLUSTER exists: reusing it"
  else
    local config="$KIND_CONFIG"
    if [[ -n "${KIND_NODE_IMAGE:-}" ]]; then
      docker image inspect "$KIND_NODE_IMAGE" >/dev/null 2>&1 \
        || die "no node image $KIND_NODE_IMAGE: build it with make kind-node-image"
      config="$(mktemp)"
      # shellcheck disable=SC2064 # expand now: config is local
      trap "rm -f '$config'" RETURN
      offline_config "$KIND_NODE_IMAGE" >"$config"
    fi
    log "creating kind cluster $KIND_CLUSTER ($KIND_CONFIG${KIND_NODE_IMAGE:+, node image $KIND_NODE_IMAGE})"
    kind create cluster --name "$KIND_CLUSTER" --config "$config" --wait 180s
  fi
  # Built for this machine and loaded into the nodes: nothing is pushed. The tags are never
  # `latest`, so pods use the loaded images (IfNotPresent) instead of pulling.
  IMAGE_PLATFORM="" "$DEPLOY_DIR/images.sh" --kind-load "$KIND_CLUSTER" component trainer-cpu
  if [[ "${TRAINING_OPERATOR:-}" == offline ]]; then
    # The operator image built here from the pinned release (no registry holds it).
    kind load docker-image --name "$KIND_CLUSTER" "$("$REPO_ROOT/scripts/kind/training-operator.sh" image)"
  fi
  if [[ "${ARTIFACT_STORE:-seaweedfs}" == seaweedfs ]]; then
    # Before deploy.sh: it copies the store's Secret into the training namespace.
    kind load docker-image --name "$KIND_CLUSTER" "$("$REPO_ROOT/scripts/kind/artifact-store.sh" image)"
    KFP_NAMESPACE="$KFP_NAMESPACE" "$REPO_ROOT/scripts/kind/artifact-store.sh" install
  fi
  # KFP is its own step (kind.sh kfp) unless asked for here: without it there is no pipeline
  # to upload yet.
  [[ "${KFP:-skip}" != offline ]] || load_offline_kfp_images
  KFP="${KFP:-skip}" UPLOAD="${UPLOAD:-0}" "$DEPLOY_DIR/deploy.sh"
  log "KFP is not installed by kind-up: run make kind-kfp to install it and upload the pipeline"
}

# KFP=offline: the backend built here from the KFP checkout (cached) and the images it needs
# besides, loaded into every node (pipeline pods run the driver and launcher images anywhere).
load_offline_kfp_images() {
  local refs=()
  mapfile -t refs < <("$REPO_ROOT/scripts/kfp/build.sh" images && "$REPO_ROOT/scripts/kfp/support-images.sh")
  ((${#refs[@]} == 10)) || die "expected 10 KFP images, got ${#refs[@]}: ${refs[*]}"
  log "loading ${#refs[@]} KFP images into kind cluster $KIND_CLUSTER"
  kind load docker-image --name "$KIND_CLUSTER" "${refs[@]}"
}

kfp() {
  require kubectl cluster
  cluster_exists || die "no kind cluster $KIND_CLUSTER: run make kind-up first"
  [[ "${KFP:-install}" != offline ]] || load_offline_kfp_images
  # kind-up installed the operator; this step leaves it as it is unless told otherwise.
  KFP="${KFP:-install}" TRAINING_OPERATOR="${TRAINING_OPERATOR:-skip}" "$DEPLOY_DIR/deploy.sh"
}

# The kind suite: what tests/kind proves on real pods (see its conftest for the variables).
suite() {
  require docker kind kubectl helm
  local started was_up="" rc=0
  started=$(date +%s)
  cluster_exists && was_up=1
  if [[ -n "$was_up" || "${KEEP:-0}" == 1 ]]; then
    log "kind cluster $KIND_CLUSTER will be left running (it was up before, or KEEP=1)"
  else
    # Deleted however this ends: a failed kind-up or test run included.
    trap down EXIT
  fi
  up
  local trainer component pytest_args=() nodes=()
  trainer="$(config image trainer-cpu)" || die "cannot resolve the image references (see above)"
  component="$(config image component)" || die "cannot resolve the image references (see above)"
  read -r -a pytest_args <<<"${PYTEST_ARGS:-}"
  log "running tests/kind on kind cluster $KIND_CLUSTER"
  # The tests call kubectl and helm by name: the ones this script checked.
  (cd "$REPO_ROOT" && PATH="$(dirname "$KUBECTL_BIN"):$(dirname "$HELM_BIN"):$PATH" LANDMARKS_KIND_CLUSTER="$KIND_CLUSTER" LANDMARKS_KIND_TRAINER_IMAGE="$trainer" \
    LANDMARKS_KIND_COMPONENT_IMAGE="$component" TRAINING_NS="$TRAINING_NS" \
    KFP_NAMESPACE="$KFP_NAMESPACE" "$PYTHON" -m pytest tests/kind "${pytest_args[@]}") || rc=$?
  log "memory of the cluster's node containers:"
  mapfile -t nodes < <(docker ps -q --filter "label=io.x-k8s.kind.cluster=$KIND_CLUSTER")
  ((${#nodes[@]})) && docker stats --no-stream --format '  {{.Name}} {{.MemUsage}}' "${nodes[@]}"
  if ((rc != 0)); then
    diagnose "$TRAINING_NS"
  fi
  log "kind-test finished in $(($(date +%s) - started))s (exit $rc)"
  return "$rc"
}

pipeline_run() {
  require kubectl cluster
  cluster_exists || die "no kind cluster $KIND_CLUSTER: run make kind-up first"
  local params=() p
  # No metadata: the ingest step generates the embedded dataset inside its pod. CPU workers,
  # the tiny trainer profile, and no ImageNet download (kind nodes may have no internet).
  read -r -a params <<<"${KIND_TEST_PARAMS:-workers=2 profile=tiny weights=none embedded_images_per_class=20}"
  local args=()
  for p in "${params[@]}"; do args+=(--param "$p"); done
  trap stop_port_forward EXIT
  kfp_api_url || die "no KFP API on kind cluster $KIND_CLUSTER: run make kind-kfp (it installs KFP)"
  log "uploading and running the pipeline on kind ($KIND_CLUSTER); TFJobs land in $TRAINING_NS"
  local rc=0
  (cd "$REPO_ROOT" && "$PYTHON" -m pipelines.upload --host "$KFP_API_URL" \
    --ui-host "${KFP_UI_HOST:-http://localhost:8080}" --experiment kind-run \
    --run --wait "${KIND_TEST_TIMEOUT:-3600}" --poll 10 "${args[@]}") || rc=$?
  log "TFJobs in $TRAINING_NS:"
  kube -n "$TRAINING_NS" get tfjobs -o wide 2>/dev/null || true
  if ((rc != 0)); then
    diagnose "$TRAINING_NS"
    diagnose "$KFP_NAMESPACE"
    die "kind-run failed (exit $rc): run state, pods and events above"
  fi
  log "kind-run passed"
}

down() {
  require kind
  if cluster_exists; then
    kind delete cluster --name "$KIND_CLUSTER"
  else
    log "no kind cluster $KIND_CLUSTER"
  fi
  # kind keeps its Docker network for the next cluster; the last cluster's down removes it.
  if [[ -z "$(kind get clusters 2>/dev/null)" ]] && docker network inspect kind >/dev/null 2>&1 \
    && [[ "$(docker network inspect kind --format '{{len .Containers}}')" == 0 ]]; then
    docker network rm kind >/dev/null && log "removed the kind Docker network (no cluster left)"
  fi
  # What kind made for this cluster must be gone: node containers (and their volumes, which
  # kind removes with them) and the kubeconfig context.
  local left=()
  mapfile -t left < <(docker ps -aq --filter "label=io.x-k8s.kind.cluster=$KIND_CLUSTER")
  ((${#left[@]} == 0)) || die "containers of kind cluster $KIND_CLUSTER are left: ${left[*]}"
  if command -v kubectl >/dev/null && kubectl config get-contexts -o name 2>/dev/null | grep -qx "kind-$KIND_CLUSTER"; then
    die "the kubeconfig context kind-$KIND_CLUSTER is left"
  fi
}

case "${1:-}" in
  up) up ;;
  kfp) kfp ;;
  test) suite ;;
  run) pipeline_run ;;
  down) down ;;
  *) die "usage: $0 up|test|kfp|run|down" ;;
esac
