#!/usr/bin/env bash
# The Kubeflow training-operator v1 without a registry or GitHub: an image of the binary built
# from the Go module proxy, and the pinned release's own standalone overlay read from the Go
# module cache, with that image and the patches of manifests/training-operator (TFJob only).
#
#   usage: scripts/kind/training-operator.sh image     build landmarks-kind/training-operator:<version>
#          scripts/kind/training-operator.sh render    print the manifests (kubectl kustomize)
#          scripts/kind/training-operator.sh install   apply them server-side and wait until Ready
#          scripts/kind/training-operator.sh --print-ref
#   env: KUBE_CONTEXT (install: the kubectl context), WAIT_TIMEOUT (install, default 180s),
#        LANDMARKS_CACHE (Go builds, default ~/.cache/landmarks).
# The webhook certificate: the overlay creates the empty Secret training-operator-webhook-cert
# and the operator fills it itself (cert-controller's rotator) before it turns Ready.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck disable=SC1091 # KEY=VALUE pins only
source "$REPO_ROOT/scripts/test-cluster/versions.env"
CACHE="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}"
IMAGE_REPO=landmarks-kind/training-operator
IMAGE_REF="$IMAGE_REPO:$TRAINING_OPERATOR_VERSION"
# The image name the upstream overlay uses, replaced by ours.
UPSTREAM_IMAGE=ghcr.io/kubeflow/training-v1/training-operator
export DOCKER_BUILDKIT=0 # the classic builder: BuildKit is not everywhere

log() { printf '%s training-operator: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'training-operator: error: %s\n' "$*" >&2
  exit 1
}

kubectl_bin() {
  if command -v kubectl >/dev/null; then command -v kubectl; else echo "$("$REPO_ROOT/scripts/k8s-tools.sh")/kubectl"; fi
}

image() {
  command -v docker >/dev/null || die "docker is required to build $IMAGE_REF"
  "$REPO_ROOT/scripts/test-cluster/build.sh" training-operator >&2
  local binary="$CACHE/test-cluster/training-operator-$TRAINING_OPERATOR_VERSION/bin/training-operator.v1"
  [[ -x "$binary" ]] || die "no operator binary at $binary after scripts/test-cluster/build.sh"
  local ctx
  ctx="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: ctx is local
  trap "rm -rf '$ctx'" RETURN
  cp "$binary" "$ctx/manager"
  log "building $IMAGE_REF from $binary"
  docker build -q -t "$IMAGE_REF" -f "$HERE/training-operator.Dockerfile" "$ctx" >/dev/null
  echo "$IMAGE_REF"
}

# The overlay is copied out of the (read-only) module cache, and manifests/training-operator's
# kustomization is laid beside it with its GitHub resource pointed at the copy: one list of
# patches serves both the online and the offline install.
render() {
  local module ctx
  module="$("$REPO_ROOT/scripts/test-cluster/upstream.sh" module-dir)"
  ctx="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: ctx is local
  trap "rm -rf '$ctx'" RETURN
  cp -r "$module/manifests" "$ctx/upstream"
  chmod -R u+w "$ctx/upstream"
  mkdir "$ctx/offline"
  grep -q 'github.com/kubeflow/trainer//manifests/overlays/standalone' \
    "$REPO_ROOT/manifests/training-operator/kustomization.yaml" \
    || die "manifests/training-operator/kustomization.yaml no longer names the standalone overlay"
  sed 's#^\(\s*- \)https://github.com/kubeflow/trainer//manifests/overlays/standalone?ref=.*#\1../upstream/overlays/standalone#' \
    "$REPO_ROOT/manifests/training-operator/kustomization.yaml" >"$ctx/offline/kustomization.yaml"
  cat >>"$ctx/offline/kustomization.yaml" <<YAML
images:
  - name: $UPSTREAM_IMAGE
    newName: $IMAGE_REPO
    newTag: $TRAINING_OPERATOR_VERSION
YAML
  "$(kubectl_bin)" kustomize "$ctx/offline"
}

install() {
  local kubectl manifests
  kubectl="$(kubectl_bin)"
  local ctx_args=()
  [[ -n "${KUBE_CONTEXT:-}" ]] && ctx_args=(--context "$KUBE_CONTEXT")
  manifests="$(render)"
  grep -q "image: $IMAGE_REF" <<<"$manifests" || die "the rendered manifests do not use $IMAGE_REF"
  log "applying the training-operator $TRAINING_OPERATOR_VERSION (offline overlay, image $IMAGE_REF, server-side)"
  "$kubectl" "${ctx_args[@]}" apply --server-side --field-manager=landmarks-deploy -f - <<<"$manifests" >&2
  # A CRD created a moment ago may have no status yet, and `kubectl wait` then fails at once
  # (".status.conditions accessor error": seen) instead of waiting: retry, bounded.
  local attempt
  for attempt in $(seq 1 30); do
    "$kubectl" "${ctx_args[@]}" wait --for condition=established --timeout=60s \
      crd/tfjobs.kubeflow.org >&2 2>/dev/null && break
    ((attempt < 30)) || die "the TFJob CRD was not established"
    sleep 1
  done
  "$kubectl" "${ctx_args[@]}" -n kubeflow rollout status deployment/training-operator \
    --timeout="${WAIT_TIMEOUT:-180s}" >&2
}

case "${1:-}" in
  image) image ;;
  render) render ;;
  install) install ;;
  --print-ref) echo "$IMAGE_REF" ;;
  *) die "usage: $0 image|render|install|--print-ref" ;;
esac
