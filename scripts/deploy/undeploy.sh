#!/usr/bin/env bash
# `make undeploy`: removes what `make deploy` put on the cluster and nothing else. The chart
# release always; the training namespace, Kubeflow Pipelines and the training-operator only
# when deploy installed them (recorded in ConfigMap $RELEASE-deploy-state), and the
# namespace only while no TFJob is left in it. PURGE=1 removes the namespace regardless.
set -euo pipefail
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env_file

RELEASE="${RELEASE:-landmarks}"
HELM_NAMESPACE="${HELM_NAMESPACE:-default}"
KFP_NAMESPACE="${KFP_NAMESPACE:-kubeflow}"
STATE_CONFIGMAP="$RELEASE-deploy-state"

require kubectl helm cluster
context="${KUBE_CONTEXT:-$(kube config current-context)}"
log "undeploying from context '$context'"

state_value() { kube -n "$HELM_NAMESPACE" get configmap "$STATE_CONFIGMAP" -o "jsonpath={.data.$1}" 2>/dev/null || true; }
installed() { [[ "$(state_value "$1")" == true ]]; }
# The training namespace deploy created, by name (it outlives the release when kept).
created_ns="$(state_value trainingNamespace)"

training_ns=""
keep_namespace_record=0
if helm_ status "$RELEASE" --namespace "$HELM_NAMESPACE" >/dev/null 2>&1; then
  training_ns="$(helm_ get values "$RELEASE" --namespace "$HELM_NAMESPACE" --all -o json \
    | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["namespace"]["name"])' 2>/dev/null || true)"
  log "helm uninstall $RELEASE"
  helm_ uninstall "$RELEASE" --namespace "$HELM_NAMESPACE" --wait
else
  log "no helm release $RELEASE in $HELM_NAMESPACE: nothing to uninstall"
fi

# The chart keeps its namespace on uninstall (running jobs live there).
training_ns="${training_ns:-$created_ns}"
if [[ -n "$training_ns" ]] && kube get namespace "$training_ns" >/dev/null 2>&1; then
  jobs="$(kube -n "$training_ns" get tfjobs -o name 2>/dev/null | wc -l | tr -d ' ')"
  ours=no
  [[ "$created_ns" == "$training_ns" ]] && ours=yes
  if [[ "${PURGE:-0}" == 1 ]] || [[ "$ours" == yes && "$jobs" == 0 ]]; then
    log "deleting namespace $training_ns"
    kube delete namespace "$training_ns" --wait=true
  else
    log "keeping namespace $training_ns ($jobs TFJobs; created by deploy: $ours); PURGE=1 deletes it"
    # The artifact-store credentials deploy copied there go with the release.
    kube -n "$training_ns" delete secret -l app.kubernetes.io/managed-by=landmarks-deploy \
      --ignore-not-found >/dev/null
    [[ "$ours" == yes ]] && keep_namespace_record=1
  fi
fi

# Deletes what a kustomize overlay renders except Namespaces: `kubeflow` may hold things
# that were there before deploy, so it goes only if deploy created it (below).
delete_overlay() { kube kustomize "$1" | delete_rendered; }
delete_rendered() {
  "$PYTHON" -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d and d.get("kind") != "Namespace"]
yaml.safe_dump_all(docs, sys.stdout)
' | kube delete --ignore-not-found --wait=false -f -
}
if installed kfp; then
  log "deleting Kubeflow Pipelines (deploy installed it)"
  delete_overlay "$REPO_ROOT/manifests/kfp"
  delete_overlay "$REPO_ROOT/manifests/kfp/cluster-scoped"
elif [[ "$(state_value kfp)" == offline ]]; then
  log "deleting Kubeflow Pipelines (deploy installed it offline)"
  KUBE_CONTEXT="${KUBE_CONTEXT:-}" "$REPO_ROOT/scripts/kfp/install.sh" render | delete_rendered
fi
if installed trainingOperator; then
  # Deleting the CRD deletes every TFJob in the cluster: only when deploy brought it.
  log "deleting the training-operator (deploy installed it)"
  delete_overlay "$REPO_ROOT/manifests/training-operator"
fi
if installed kubeflowNamespace; then
  log "deleting namespace kubeflow (deploy created it)"
  kube delete namespace kubeflow --ignore-not-found --wait=true
fi
kube -n "$HELM_NAMESPACE" delete configmap "$STATE_CONFIGMAP" --ignore-not-found >/dev/null
if ((keep_namespace_record)); then
  # The kept namespace is still deploy's: a later undeploy may delete it once it is empty.
  kube -n "$HELM_NAMESPACE" create configmap "$STATE_CONFIGMAP" --from-literal="trainingNamespace=$training_ns" >/dev/null
fi
log "undeployed"
