#!/usr/bin/env bash
# Kubeflow Pipelines on a cluster that reaches no registry and no GitHub (kind here, CI): the
# pinned release's own manifests, read from the KFP checkout the backend is built from, with
# Argo's from the Go module cache, through the overlay scripts/kfp/offline/ (PostgreSQL, images
# built here, what the pipeline does not use left out). `make deploy KFP=offline` runs it.
#
#   usage: scripts/kfp/install.sh render    print the manifests (cluster-scoped first)
#          scripts/kfp/install.sh install   apply them server-side and wait until Available
#          scripts/kfp/install.sh images    print the image refs the manifests use
#   env: KFP_SRC (the checkout: see scripts/kfp/build.sh), KFP_NAMESPACE (default kubeflow),
#        KUBE_CONTEXT, WAIT_TIMEOUT (install, default 10m), LANDMARKS_CACHE.
# The images must already be on the nodes: scripts/deploy/kind.sh kfp builds and loads them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck disable=SC1091 # KEY=VALUE pins only
source "$HERE/versions.env"
CACHE="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}"
KFP_NAMESPACE="${KFP_NAMESPACE:-kubeflow}"

log() { printf '%s kfp-install: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'kfp-install: error: %s\n' "$*" >&2
  exit 1
}

kubectl_bin() {
  if command -v kubectl >/dev/null; then command -v kubectl; else echo "$("$REPO_ROOT/scripts/k8s-tools.sh")/kubectl"; fi
}
kube() { "$(kubectl_bin)" ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} "$@"; }

ref() { "$HERE/build.sh" --print-ref "$1"; }
support_ref() { "$HERE/support-images.sh" --print-ref "$1"; }

# Upstream image name (without tag) -> the image built here. The driver and launcher are not in
# the manifests: the API server names them in every workflow it compiles (images-patch.yaml).
image_map() {
  cat <<MAP
ghcr.io/kubeflow/kfp-api-server $(ref api-server)
ghcr.io/kubeflow/kfp-persistence-agent $(ref persistence-agent)
ghcr.io/kubeflow/kfp-scheduled-workflow-controller $(ref scheduled-workflow)
quay.io/argoproj/workflow-controller $(ref workflow-controller)
mysql $(support_ref mariadb)
docker.io/alpine $(support_ref netcat)
gcr.io/tfx-oss-public/ml_metadata_store_server $(support_ref mlmd-server)
MAP
}

# The work folder: copies of the checkout's manifests (kfp/) and Argo's (argo/), their GitHub
# references to Argo pointed at argo/, the overlay with the pinned images (overlay/), and what
# they render to, once: cluster-scoped.yaml (CRDs, applied first) and kfp.yaml.
prepare() {
  local src work argo_dir
  src="$("$HERE/build.sh" --print-src)"
  [[ -d "$src/manifests/kustomize/env/platform-agnostic" ]] \
    || die "no KFP manifests in $src (manifests/kustomize/env/platform-agnostic): give the checkout with KFP_SRC=... or run scripts/kfp/build.sh source"
  argo_dir="$(cd / && go mod download -json "$ARGO_WORKFLOWS_MODULE@$ARGO_WORKFLOWS_VERSION" |
    sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$argo_dir/manifests" ]] || die "no Argo manifests for $ARGO_WORKFLOWS_MODULE@$ARGO_WORKFLOWS_VERSION in the Go module cache"
  work="$CACHE/kfp/manifests"
  rm -rf "$work" && mkdir -p "$work"
  cp -r "$src/manifests/kustomize" "$work/kfp"
  cp -r "$argo_dir/manifests" "$work/argo"
  cp -r "$HERE/offline" "$work/overlay"
  chmod -R u+w "$work"
  # kustomize takes no absolute paths: each GitHub reference becomes a path relative to the
  # kustomization that names it. Anything else remote is an error, found at render time.
  "$PYTHON" - "$work" "$ARGO_WORKFLOWS_VERSION" <<'PY'
import os, pathlib, re, sys
work, version = pathlib.Path(sys.argv[1]), sys.argv[2]
remote = re.compile(r"https://github\.com/argoproj/argo-workflows/(manifests/[^?\s]*)\?ref=" + re.escape(version) + r"\S*")
for k in (work / "kfp").rglob("kustomization.yaml"):
    text = k.read_text()
    new = remote.sub(lambda m: os.path.relpath(work / "argo" / m.group(1).removeprefix("manifests/"), k.parent), text)
    if new != text:
        k.write_text(new)
PY
  # The API server's config.json without `plugins` (MLflow): see offline/kustomization.yaml.
  "$PYTHON" -c '
import json, sys
config = json.load(open(sys.argv[1]))
config.pop("plugins", None)
json.dump(config, open(sys.argv[2], "w"), indent=2)
' "$src/backend/src/apiserver/config/config.json" "$work/overlay/config.json"
  "$PYTHON" - "$work/overlay" <<'PY'
import pathlib, sys
overlay = pathlib.Path(sys.argv[1])
docs = [d for d in (overlay / "left-out.yaml").read_text().split("\n---\n") if d.strip()]
entries = []
for i, doc in enumerate(docs):
    (overlay / f"left-out-{i:02d}.yaml").write_text(doc + "\n")
    entries.append(f"  - path: left-out-{i:02d}.yaml\n")
kustomization = overlay / "kustomization.yaml"
kustomization.write_text(kustomization.read_text() + "".join(entries))
PY
  {
    echo "images:"
    while read -r name new; do
      printf '  - name: %s\n    newName: %s\n    newTag: "%s"\n' "$name" "${new%:*}" "${new##*:}"
    done < <(image_map)
  } >>"$work/overlay/kustomization.yaml"
  cat >"$work/overlay/images-patch.yaml" <<YAML
# Written by scripts/kfp/install.sh from the pins: the images the API server puts into the
# workflows it compiles, and Argo's executor (an argument, not an image field).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ml-pipeline
  namespace: kubeflow
spec:
  template:
    spec:
      containers:
        - name: ml-pipeline-api-server
          env:
            - name: V2_DRIVER_IMAGE
              value: $(ref driver)
            - name: V2_LAUNCHER_IMAGE
              value: $(ref launcher)
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: workflow-controller
  namespace: kubeflow
spec:
  template:
    spec:
      containers:
        - name: workflow-controller
          args:
            - --configmap
            - workflow-controller-configmap
            - --executor-image
            - $(ref argoexec)
            - --namespaced
YAML
  kube kustomize "$work/kfp/cluster-scoped-resources" >"$work/cluster-scoped.yaml"
  kube kustomize "$work/overlay" >"$work/kfp.yaml"
  echo "$work"
}

render() { # $1: work folder
  cat "$1/cluster-scoped.yaml"
  echo "---"
  cat "$1/kfp.yaml"
}

# Every image the rendered manifests name, and a refusal if one is not built here.
images() { # $1: work folder
  local refs foreign
  refs="$(render "$1" | sed -n 's/^\s*\(- \)\{0,1\}image: *//p' | tr -d '"' | sort -u)"
  foreign="$(grep -v '^landmarks-kfp/' <<<"$refs" || true)"
  [[ -z "$foreign" ]] || die "the offline manifests still name images not built here: $(tr '\n' ' ' <<<"$foreign")"
  echo "$refs"
  ref driver
  ref launcher
  ref argoexec
}

install() { # $1: work folder
  local work="$1"
  images "$work" >/dev/null
  log "applying KFP's cluster-scoped resources (CRDs)"
  kube apply --server-side --force-conflicts --field-manager=landmarks-deploy -f "$work/cluster-scoped.yaml" >/dev/null
  kube wait --for condition=established --timeout=60s crd/workflows.argoproj.io crd/scheduledworkflows.kubeflow.org
  log "applying KFP (offline overlay, namespace $KFP_NAMESPACE)"
  kube apply --server-side --force-conflicts --field-manager=landmarks-deploy -f "$work/kfp.yaml" >/dev/null
  log "waiting for KFP's deployments (timeout ${WAIT_TIMEOUT:-10m})"
  kube -n "$KFP_NAMESPACE" wait --for condition=Available deployment --all --timeout="${WAIT_TIMEOUT:-10m}"
  # Seen on every fresh install on kind: the persistence agent that started with the API server
  # reports no run ("Error while reporting workflow resource (code: Unimplemented, message:
  # unexpected HTTP status code received from server: 404 (Not Found); malformed header: missing
  # HTTP content-type)"), so runs stay PENDING in the API and the UI; the same agent restarted
  # once the API server is Available reports them. Cause not found (a gRPC call of the same RPC
  # from a pod gets the API server's own answer).
  log "restarting the persistence agent now that the API server is up"
  kube -n "$KFP_NAMESPACE" rollout restart deployment/ml-pipeline-persistenceagent >/dev/null
  kube -n "$KFP_NAMESPACE" rollout status deployment/ml-pipeline-persistenceagent --timeout="${WAIT_TIMEOUT:-10m}"
}

PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
case "${1:-}" in
  render | images | install)
    work="$(prepare)" # its own statement: set -e stops at a failed prepare
    "$1" "$work"
    ;;
  *) die "usage: $0 render|install|images" ;;
esac
