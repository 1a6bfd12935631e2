#!/usr/bin/env bash
# Checks what a make target needs before it changes anything, and says how to get what
# is missing. Every check named runs; the exit status is 1 if any failed.
#   usage: scripts/deploy/check-prereqs.sh [docker] [kind] [git] [kubectl] [helm] [cluster]
#   cluster: the current kubectl context (or $KUBE_CONTEXT) answers within $CLUSTER_TIMEOUT s.
set -euo pipefail
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($#)) || die "usage: $0 [docker] [kind] [git] [kubectl] [helm] [cluster]"
require "$@"
