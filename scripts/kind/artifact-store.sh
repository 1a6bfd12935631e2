#!/usr/bin/env bash
# The artifact store of the kind test cluster, the way KFP 2.17 lays it out: SeaweedFS as Service
# `seaweedfs` (S3 on port 9000) in the KFP namespace, its keys in the Secret
# `mlpipeline-minio-artifact` (accesskey, secretkey), the bucket `mlpipeline`. The project's
# minio:// URIs reach it there (landmarks.storage, LANDMARKS_MINIO_ENDPOINT's default), and
# `make deploy` copies that Secret into the training namespace for the TFJob replicas.
# Until KFP itself runs on kind (it brings its own SeaweedFS), this stands in its place.
#
#   usage: scripts/kind/artifact-store.sh image       build landmarks-kind/seaweedfs:<version>
#          scripts/kind/artifact-store.sh install     keys, SeaweedFS, bucket; waits until ready
#          scripts/kind/artifact-store.sh uninstall
#   env: KUBE_CONTEXT (the kubectl context), KFP_NAMESPACE (default kubeflow),
#        WAIT_TIMEOUT (default 180s). The image must already be in the nodes (kind load).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck disable=SC1091 # KEY=VALUE pins only
source "$REPO_ROOT/scripts/s3/versions.env"
IMAGE_REF="landmarks-kind/seaweedfs:$SEAWEEDFS_RELEASE"
NAMESPACE="${KFP_NAMESPACE:-kubeflow}"
SECRET=mlpipeline-minio-artifact
BUCKET=mlpipeline
export DOCKER_BUILDKIT=0

log() { printf '%s artifact-store: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'artifact-store: error: %s\n' "$*" >&2
  exit 1
}
kube() { kubectl ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} -n "$NAMESPACE" "$@"; }

image() {
  command -v docker >/dev/null || die "docker is required to build $IMAGE_REF"
  if docker image inspect "$IMAGE_REF" >/dev/null 2>&1; then
    echo "$IMAGE_REF"
    return
  fi
  local binary context
  binary="$("$REPO_ROOT/scripts/s3/build.sh")" || die "SeaweedFS could not be built (make s3-server)"
  context="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: context is local
  trap "rm -rf '$context'" RETURN
  cp "$binary" "$context/weed"
  docker build --quiet -t "$IMAGE_REF" \
    --label "org.opencontainers.image.version=$SEAWEEDFS_VERSION" \
    -f "$HERE/seaweedfs.Dockerfile" "$context" >/dev/null
  log "built $IMAGE_REF"
  echo "$IMAGE_REF"
}

install() {
  kubectl ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} create namespace "$NAMESPACE" \
    --dry-run=client -o yaml | kubectl ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} apply -f - >/dev/null
  # Keys made once per cluster and kept: the training namespace holds a copy of them.
  local access secret
  if kube get secret "$SECRET" >/dev/null 2>&1; then
    access="$(kube get secret "$SECRET" -o jsonpath='{.data.accesskey}' | base64 -d)"
    secret="$(kube get secret "$SECRET" -o jsonpath='{.data.secretkey}' | base64 -d)"
  else
    access="landmarks-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    kube create secret generic "$SECRET" \
      --from-literal=accesskey="$access" --from-literal=secretkey="$secret" >/dev/null
    log "created the Secret $NAMESPACE/$SECRET"
  fi
  local identities
  identities="$(printf '{"identities":[{"name":"kfp","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","List","Tagging","Write"]}]}' "$access" "$secret")"
  kube create secret generic seaweedfs-s3-config --from-literal=s3.json="$identities" \
    --dry-run=client -o yaml | kube apply -f - >/dev/null
  sed "s#image: IMAGE#image: $IMAGE_REF#" "$HERE/seaweedfs.yaml" | kube apply -f - >/dev/null
  log "waiting for SeaweedFS in $NAMESPACE (timeout ${WAIT_TIMEOUT:-180s})"
  kube rollout status deployment/seaweedfs --timeout "${WAIT_TIMEOUT:-180s}" >&2
  # The S3 port answers before the filer takes writes: retry, bounded. Creating a bucket that
  # exists is an error, so success is read from the listing.
  local attempt listing
  for attempt in $(seq 1 30); do
    # weed shell exits 1 when any command fails (the create, when the bucket exists).
    listing="$(printf 's3.bucket.create -name %s\ns3.bucket.list\n' "$BUCKET" \
      | kube exec -i deploy/seaweedfs -- /weed shell -master=localhost:9333 2>/dev/null || true)"
    if grep -q "^  $BUCKET\b" <<<"$listing"; then
      log "bucket $BUCKET ready at http://seaweedfs.$NAMESPACE:9000"
      return
    fi
    sleep 2
  done
  die "SeaweedFS did not create the bucket $BUCKET after $attempt tries: kubectl -n $NAMESPACE logs deploy/seaweedfs"
}

uninstall() {
  kube delete deployment/seaweedfs service/seaweedfs secret/seaweedfs-s3-config \
    secret/"$SECRET" --ignore-not-found >&2
}

case "${1:-}" in
  image) image ;;
  install) install ;;
  uninstall) uninstall ;;
  *) die "usage: $0 image|install|uninstall" ;;
esac
