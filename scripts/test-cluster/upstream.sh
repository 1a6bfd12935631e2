#!/usr/bin/env bash
# Paths into the pinned upstream training-operator release, read from the Go module cache
# (`go mod download` fetches the module zip once; nothing is copied into the repository).
#
#   usage: scripts/test-cluster/upstream.sh crd-path    -> the TFJob CRD (kubeflow.org_tfjobs.yaml)
#          scripts/test-cluster/upstream.sh module-dir  -> the extracted module
# Exit 1 with a reason on stderr when Go or the module is unavailable.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091 # versions.env holds only KEY=VALUE pins
source "$HERE/versions.env"

module_dir() {
  command -v go >/dev/null || { echo "upstream: Go is not installed" >&2; return 1; }
  local json dir
  # Run outside any module so the repository (or a go.work) cannot influence the lookup.
  json="$(cd / && GOFLAGS=-mod=mod go mod download -json \
    "$TRAINING_OPERATOR_MODULE@$TRAINING_OPERATOR_VERSION")" || {
    echo "upstream: cannot download $TRAINING_OPERATOR_MODULE@$TRAINING_OPERATOR_VERSION" >&2
    return 1
  }
  dir="$(sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
  [[ -d "$dir" ]] || { echo "upstream: no extracted module in: $json" >&2; return 1; }
  echo "$dir"
}

case "${1:-}" in
  crd-path)
    crd="$(module_dir)/manifests/base/crds/kubeflow.org_tfjobs.yaml"
    [[ -f "$crd" ]] || { echo "upstream: $crd is missing" >&2; exit 1; }
    echo "$crd"
    ;;
  module-dir) module_dir ;;
  *)
    echo "usage: $0 crd-path|module-dir" >&2
    exit 2
    ;;
esac
