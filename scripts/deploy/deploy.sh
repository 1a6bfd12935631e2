#!/usr/bin/env bash
# `make deploy`: prerequisites, training-operator (and KFP when asked), the landmarks-platform
# chart with `helm upgrade --install --wait`, then the pipeline compiled and uploaded as a new
# version through the KFP client, with its UI link. Idempotent: run it again after a change.
# Settings: see scripts/deploy/env.sh.example (environment, make VAR=value, or ./env.sh).
set -euo pipefail
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env_file

ENV="${ENV:-gke}"
RELEASE="${RELEASE:-landmarks}"
HELM_NAMESPACE="${HELM_NAMESPACE:-default}"
TRAINING_OPERATOR="${TRAINING_OPERATOR:-install}"
KFP="${KFP:-skip}"
KFP_NAMESPACE="${KFP_NAMESPACE:-kubeflow}"
UPLOAD="${UPLOAD:-1}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-10m}"
CHART="$REPO_ROOT/charts/landmarks-platform"
STATE_CONFIGMAP="$RELEASE-deploy-state"

# ---- 1. settings, checked before the cluster is touched ----
values_file="$CHART/ci/$ENV-values.yaml"
if [[ ! -f "$values_file" ]]; then
  profiles=""
  for f in "$CHART"/ci/*-values.yaml; do
    f="${f##*/}"
    profiles+="${f%-values.yaml} "
  done
  die "ENV=$ENV has no values profile $values_file; choose one of: $profiles"
fi
case "$TRAINING_OPERATOR" in install | offline | skip) ;; *) die "TRAINING_OPERATOR=$TRAINING_OPERATOR: expected install, offline or skip" ;; esac
case "$KFP" in install | offline | skip) ;; *) die "KFP=$KFP: expected install, offline or skip" ;; esac
helm_args=(-f "$values_file")
if [[ "$ENV" == gke ]]; then
  # The gke profile carries placeholders; deploying them would bind the wrong identity.
  [[ -n "${GCP_PROJECT:-}" && -n "${GCP_SERVICE_ACCOUNT:-}" ]] \
    || die "ENV=gke needs GCP_PROJECT and GCP_SERVICE_ACCOUNT (the Google service account the trainer acts as through Workload Identity), e.g. make deploy GCP_PROJECT=my-project GCP_SERVICE_ACCOUNT=landmarks-trainer@my-project.iam.gserviceaccount.com"
  helm_args+=(--set "gcp.projectId=$GCP_PROJECT" --set "gcp.workloadIdentity.gcpServiceAccount=$GCP_SERVICE_ACCOUNT")
elif [[ "$ENV" == kind ]]; then
  if [[ -n "${GCP_KEY_FILE:-}" ]]; then
    [[ -r "$GCP_KEY_FILE" ]] || die "GCP_KEY_FILE=$GCP_KEY_FILE is not a readable file"
    # The chart makes the Secret from the file: nothing to create beforehand.
    helm_args+=(--set "gcp.keySecret.existingSecret=" --set-file "gcp.keySecret.keyFile=$GCP_KEY_FILE")
  else
    warn "ENV=kind without GCP_KEY_FILE: training pods get no Google credentials (gcp.auth=none), so gs:// data is out of reach"
    helm_args+=(--set "gcp.auth=none")
  fi
fi
if [[ -n "${HELM_EXTRA_ARGS:-}" ]]; then
  read -r -a extra <<<"$HELM_EXTRA_ARGS"
  helm_args+=("${extra[@]}")
fi
if [[ "$UPLOAD" == 1 && ! -x "$PYTHON" ]]; then
  die "no Python at $PYTHON to compile and upload the pipeline: run make venv (or set PYTHON)"
fi

# ---- 2. tools and cluster ----
needs=(kubectl helm cluster)
[[ "$TRAINING_OPERATOR" == install || "$KFP" == install ]] && needs+=(git)
require "${needs[@]}"
context="${KUBE_CONTEXT:-$(kube config current-context)}"
log "deploying to context '$context' with values profile $ENV"
kube get namespace "$HELM_NAMESPACE" >/dev/null 2>&1 \
  || die "HELM_NAMESPACE=$HELM_NAMESPACE does not exist in context '$context': create it or keep the default (default)"

trap stop_port_forward EXIT

# What deploy installed itself, recorded in ConfigMap $STATE_CONFIGMAP beside the release
# record, so that undeploy removes that and nothing the cluster had before.
state_get() { kube -n "$HELM_NAMESPACE" get configmap "$STATE_CONFIGMAP" -o "jsonpath={.data.$1}" 2>/dev/null || true; }
state_set() {
  kube -n "$HELM_NAMESPACE" get configmap "$STATE_CONFIGMAP" >/dev/null 2>&1 \
    || kube -n "$HELM_NAMESPACE" create configmap "$STATE_CONFIGMAP" >/dev/null
  kube -n "$HELM_NAMESPACE" patch configmap "$STATE_CONFIGMAP" --type merge \
    -p "{\"data\":{\"$1\":\"${2:-true}\"}}" >/dev/null
}

# The operator's overlay (and KFP's) create namespace kubeflow; undeploy deletes it only if
# deploy created it.
if [[ "$TRAINING_OPERATOR" != skip || "$KFP" != skip ]]; then
  kube get namespace kubeflow >/dev/null 2>&1 || state_set kubeflowNamespace
fi

# ---- 3. training-operator (TFJob) ----
if [[ "$TRAINING_OPERATOR" == install ]]; then
  kube get crd tfjobs.kubeflow.org >/dev/null 2>&1 || state_set trainingOperator
  log "applying the training-operator (manifests/training-operator, server-side; fetches the pinned upstream overlay)"
  kube apply --server-side --field-manager=landmarks-deploy -k "$REPO_ROOT/manifests/training-operator"
  kube wait --for condition=established --timeout=60s crd/tfjobs.kubeflow.org
  if ! kube -n kubeflow rollout status deployment/training-operator --timeout="$WAIT_TIMEOUT"; then
    diagnose kubeflow
    die "the training-operator did not become ready within $WAIT_TIMEOUT (pods and events above)"
  fi
elif [[ "$TRAINING_OPERATOR" == offline ]]; then
  # No GitHub, no registry: the module cache's overlay and an image built here, which the
  # cluster must already hold (kind.sh up loads it).
  kube get crd tfjobs.kubeflow.org >/dev/null 2>&1 || state_set trainingOperator
  log "applying the training-operator offline (scripts/kind/training-operator.sh install)"
  if ! KUBE_CONTEXT="${KUBE_CONTEXT:-}" "$REPO_ROOT/scripts/kind/training-operator.sh" install; then
    diagnose kubeflow
    die "the offline training-operator did not become ready (pods and events above)"
  fi
else
  kube get crd tfjobs.kubeflow.org >/dev/null 2>&1 \
    || die "TRAINING_OPERATOR=skip but the cluster has no TFJob CRD (tfjobs.kubeflow.org): install it with TRAINING_OPERATOR=install"
  log "training-operator: using the cluster's own (TRAINING_OPERATOR=skip)"
fi

# ---- 4. Kubeflow Pipelines (only when asked) ----
if [[ "$KFP" == install ]]; then
  kube -n "$KFP_NAMESPACE" get deployment ml-pipeline >/dev/null 2>&1 || state_set kfp
  log "applying Kubeflow Pipelines 2.17.0 (manifests/kfp; fetches the pinned upstream release)"
  kube apply --server-side --field-manager=landmarks-deploy -k "$REPO_ROOT/manifests/kfp/cluster-scoped"
  kube wait --for condition=established --timeout=60s crd/applications.app.k8s.io
  kube apply --server-side --field-manager=landmarks-deploy -k "$REPO_ROOT/manifests/kfp"
  log "waiting for KFP's deployments (a first install pulls many images: minutes)"
  if ! kube -n "$KFP_NAMESPACE" wait --for condition=Available deployment --all --timeout=15m; then
    diagnose "$KFP_NAMESPACE"
    die "Kubeflow Pipelines did not become available within 15m (pods and events above)"
  fi
elif [[ "$KFP" == offline ]]; then
  # No GitHub, no registry: the pinned release's manifests from the KFP checkout the backend
  # is built from (KFP_SRC), images built here that the cluster already holds (kind.sh kfp
  # loads them), PostgreSQL instead of MySQL (scripts/kfp/README.md).
  kube -n "$KFP_NAMESPACE" get deployment ml-pipeline >/dev/null 2>&1 || state_set kfp offline
  log "applying Kubeflow Pipelines offline (scripts/kfp/install.sh install)"
  if ! KUBE_CONTEXT="${KUBE_CONTEXT:-}" KFP_NAMESPACE="$KFP_NAMESPACE" WAIT_TIMEOUT="$WAIT_TIMEOUT" \
    "$REPO_ROOT/scripts/kfp/install.sh" install; then
    diagnose "$KFP_NAMESPACE"
    die "Kubeflow Pipelines (offline) did not become available (pods and events above)"
  fi
fi

# ---- 5. the chart ----
# The namespace the chart creates (none when namespace.create=false), from the chart itself.
training_ns="$(helm_ template "$RELEASE" "$CHART" "${helm_args[@]}" | "$PYTHON" -c '
import sys, yaml
print(next((d["metadata"]["name"] for d in yaml.safe_load_all(sys.stdin) if d and d.get("kind") == "Namespace"), ""))
')"
if [[ -n "$training_ns" ]]; then
  if ! kube get namespace "$training_ns" >/dev/null 2>&1; then
    state_set trainingNamespace "$training_ns"
  else
    # helm adopts the namespace only from this release (kept by a former uninstall).
    owner="$(kube get namespace "$training_ns" -o "jsonpath={.metadata.annotations.meta\.helm\.sh/release-name}")"
    [[ "$owner" == "$RELEASE" ]] \
      || die "namespace $training_ns already exists and helm release $RELEASE does not own it: deploy into it with HELM_EXTRA_ARGS='--set namespace.create=false', or choose another with --set namespace.name=NAME"
  fi
fi
log "helm upgrade --install $RELEASE (namespace of the release: $HELM_NAMESPACE)"
helm_ upgrade --install "$RELEASE" "$CHART" --namespace "$HELM_NAMESPACE" \
  --wait --timeout "$WAIT_TIMEOUT" "${helm_args[@]}"

# ---- 5b. the artifact store's credentials where the replicas run ----
# TFJob replicas read and write KFP's minio:// artifacts with the keys of KFP's own Secret
# (landmarks.tfjob.spec.with_object_store_env), and a pod can only use a Secret of its own
# namespace: the training namespace gets a copy, refreshed on every deploy (KFP may rotate it).
artifact_secret="$(config value kfp-artifact-secret)"
jobs_ns="$(helm_ template "$RELEASE" "$CHART" "${helm_args[@]}" | "$PYTHON" -c '
import sys, yaml
print(next((d["metadata"]["namespace"] for d in yaml.safe_load_all(sys.stdin) if d and d.get("kind") == "Role"), ""))
')"
if [[ -z "$jobs_ns" ]]; then
  log "the chart renders no training namespace Role: not copying $artifact_secret"
elif secret_json="$(kube -n "$KFP_NAMESPACE" get secret "$artifact_secret" -o json 2>/dev/null)"; then
  log "copying Secret $artifact_secret from $KFP_NAMESPACE to $jobs_ns (TFJob replicas use it for minio:// artifacts)"
  printf '%s' "$secret_json" | "$PYTHON" -c '
import json, sys
src = json.load(sys.stdin)
print(json.dumps({
    "apiVersion": "v1", "kind": "Secret", "type": src.get("type", "Opaque"),
    "metadata": {"name": src["metadata"]["name"], "namespace": sys.argv[1],
                 "labels": {"app.kubernetes.io/managed-by": "landmarks-deploy"},
                 "annotations": {"landmarks.io/copied-from": sys.argv[2]}},
    "data": src.get("data", {}),
}))
' "$jobs_ns" "$KFP_NAMESPACE" | kube apply --server-side --force-conflicts --field-manager=landmarks-deploy -f - >/dev/null
else
  log "no Secret $artifact_secret in $KFP_NAMESPACE (KFP not installed there, or another artifact store): TFJob replicas get no minio:// credentials"
fi

# ---- 6. the pipeline ----
if [[ "$UPLOAD" != 1 ]]; then
  log "UPLOAD=$UPLOAD: not uploading the pipeline"
  exit 0
fi
kfp_api_url || die "no KFP API to upload to: set KFP_HOST, or install KFP with KFP=install"
ui="${KFP_UI_HOST:-http://localhost:8080}"
log "compiling and uploading the pipeline to $KFP_API_URL"
(cd "$REPO_ROOT" && "$PYTHON" -m pipelines.upload --host "$KFP_API_URL" --ui-host "$ui")
if [[ -z "${KFP_UI_HOST:-}" ]]; then
  echo "Open the link after: kubectl${KUBE_CONTEXT:+ --context $KUBE_CONTEXT} -n $KFP_NAMESPACE port-forward svc/ml-pipeline-ui 8080:80"
fi
