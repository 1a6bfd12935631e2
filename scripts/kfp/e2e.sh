#!/usr/bin/env bash
# `make kfp-e2e KFP_SRC=...`: the compiled pipeline on a real Kubeflow Pipelines backend, from a
# clean clone and a KFP checkout, with no registry and no GitHub. In order:
#   1. the backend and the images it needs, built here (cached): scripts/kfp/build.sh images,
#      scripts/kfp/support-images.sh; kind and its offline node image (scripts/kind/);
#   2. a kind cluster shaped like the users' (manifests/kind-cluster.yaml: control plane, a
#      default pool, a tainted "GPU" pool) from the offline node image: `kind.sh up` (images
#      loaded, artifact store, training-operator, chart through make deploy);
#   3. KFP through the users' path: `kind.sh kfp` with KFP=offline = make deploy KFP=offline,
#      which installs it (scripts/kfp/install.sh) and uploads the pipeline with kfp.Client;
#   4. tests/kind/test_kfp_backend.py: a run of the uploaded version (ingest, split, four
#      training steps as 2-worker TFJobs, evaluate) that must succeed, the UI's artifacts read
#      back, a second run with one parameter changed; the task times are printed at the end;
#   5. the cluster deleted, however this ends, unless it existed before or KEEP=1.
# Settings: KFP_SRC (the checkout of kubeflow/pipelines at the pinned tag; default
# scripts/kfp/build.sh's cache folder), KIND_CLUSTER (default landmarks-kfp), KEEP=1,
# PYTEST_ARGS, BASE_IMAGES (official|standin, for the project's images), and what
# scripts/deploy/kind.sh reads.
set -euo pipefail
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

export KIND_CLUSTER="${KIND_CLUSTER:-landmarks-kfp}"
export KUBE_CONTEXT="kind-$KIND_CLUSTER"
export TRAINING_OPERATOR=offline
KFP_HERE="$REPO_ROOT/scripts/kfp"
started=$SECONDS
phase_start=$SECONDS
phases=()
phase() { # $1: what just finished
  phases+=("$(printf '%-34s %5ss' "$1" "$((SECONDS - phase_start))")")
  phase_start=$SECONDS
}

src="$("$KFP_HERE/build.sh" --print-src)"
[[ -f "$src/VERSION" ]] \
  || die "no KFP checkout at $src: give one with KFP_SRC=/path/to/pipelines (kubeflow/pipelines at the tag of manifests/kfp/kustomization.yaml), or run scripts/kfp/build.sh source"
export KFP_SRC="$src"
require docker kubectl helm
command -v go >/dev/null || die "Go is needed to build the KFP backend, Argo, kind and the node image (Go >= 1.26)"

log "1/5 building the KFP backend from $src and the images it needs (cached)"
"$KFP_HERE/build.sh" images >/dev/null
"$KFP_HERE/support-images.sh" >/dev/null
"$REPO_ROOT/scripts/kind/build.sh" kind >/dev/null
PATH="$("$REPO_ROOT/scripts/kind/build.sh" --bin kind):$PATH"
"$REPO_ROOT/scripts/kind/node-image.sh"
KIND_NODE_IMAGE="$("$REPO_ROOT/scripts/kind/node-image.sh" --print-ref)"
export KIND_NODE_IMAGE PATH
phase "build (cached after the first)"

was_up=""
kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER" && was_up=1
if [[ -n "$was_up" || "${KEEP:-0}" == 1 ]]; then
  log "kind cluster $KIND_CLUSTER will be left running (it was up before, or KEEP=1)"
else
  trap '"$DEPLOY_DIR/kind.sh" down' EXIT
fi

log "2/5 kind cluster $KIND_CLUSTER (manifests/kind-cluster.yaml, node image $KIND_NODE_IMAGE)"
"$DEPLOY_DIR/kind.sh" up
phase "kind up (images, store, operator, chart)"

log "3/5 Kubeflow Pipelines through make deploy KFP=offline (install + pipeline upload)"
KFP=offline "$DEPLOY_DIR/kind.sh" kfp
phase "KFP install + upload"

log "4/5 the pipeline on KFP (tests/kind/test_kfp_backend.py)"
report="$(mktemp)"
rm -f "$report"
read -r -a pytest_args <<<"${PYTEST_ARGS:-}"
rc=0
(cd "$REPO_ROOT" && PATH="$(dirname "$(find_k8s_tool kubectl)"):$PATH" \
  LANDMARKS_KIND_CLUSTER="$KIND_CLUSTER" LANDMARKS_KFP_E2E_REPORT="$report" \
  "$PYTHON" -m pytest tests/kind/test_kfp_backend.py -v "${pytest_args[@]}") || rc=$?
phase "runs and checks"

log "5/5 results"
if [[ -s "$report" ]]; then
  "$PYTHON" - "$report" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
for key in ("first_run", "second_run"):
    run = data.get(key)
    if run:
        print(f"{key}: {run['run_id']} {run['state']} in {run['run_seconds']:.0f} s")
        for step, seconds in run["steps"].items():
            print(f"  {step:24s} {seconds:7.1f} s")
if "tfjob_nodes" in data:
    print("TFJob workers ran on:", json.dumps(data["tfjob_nodes"]))
if "evaluate" in data:
    print("best model:", data["evaluate"]["best_model"])
PY
fi
mapfile -t nodes < <(docker ps -q --filter "label=io.x-k8s.kind.cluster=$KIND_CLUSTER")
((${#nodes[@]})) && docker stats --no-stream --format '  {{.Name}} {{.MemUsage}}' "${nodes[@]}"
printf '  %s\n' "${phases[@]}"
if ((rc != 0)); then
  KUBE_CONTEXT="$KUBE_CONTEXT" diagnose "${KFP_NAMESPACE:-kubeflow}" || true
fi
log "kfp-e2e finished in $((SECONDS - started))s (exit $rc)"
exit "$rc"
