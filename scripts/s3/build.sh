#!/usr/bin/env bash
# Builds the pinned SeaweedFS `weed` binary with the machine's Go, once per machine, and prints
# the path of the binary on stdout (the test fixture runs this and starts `weed` from that path).
#
#   usage: scripts/s3/build.sh
#
# The binary lands in $LANDMARKS_CACHE/seaweedfs-<version>/bin/weed (the cache defaults to
# ~/.cache/landmarks), with its build log and wall time beside it; a finished build is never
# redone (delete the folder to force it). SeaweedFS's go.mod has a replace directive, which
# `go install module@version` refuses, so the binary is built from a small wrapper module in the
# cache (src/) that requires the upstream module and repeats that one replace.
#
# Measured on 2 shared cores (load about 10), December 2026: a cold build (empty Go build
# cache) took 898 s; the binary is 157 MiB. Go's build cache makes a rebuild much faster.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091 # versions.env holds only KEY=VALUE pins
source "$HERE/versions.env"
DIR="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}/seaweedfs-$SEAWEEDFS_VERSION"
BIN="$DIR/bin/weed"

log() { printf '%s s3 build: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
GO="$(command -v go || true)"
[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
if [[ ! -x "$GO" ]]; then
  log "Go is not installed: the S3 test server (SeaweedFS) is compiled from the Go module proxy; install Go >= 1.26"
  exit 1
fi
# The machine is shared: compile at low priority (children inherit the niceness).
if [[ "$(nice)" == 0 && -z "${S3_BUILD_RENICED:-}" ]]; then
  S3_BUILD_RENICED=1 exec nice -n 10 "$0" "$@"
fi
export CGO_ENABLED=0

build() { # $1: output file
  local src="$DIR/src" upstream_mod
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  upstream_mod="$("$GO" mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION" |
    sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$upstream_mod" ]] || { log "no go.mod for $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION"; return 1; }
  "$GO" mod init landmarks.local/s3/seaweedfs
  "$GO" mod edit -go="$(sed -n 's/^go \(.*\)$/\1/p' "$upstream_mod")"
  # Upstream's module-path replaces (not local paths) must hold here too, or its imports break.
  while read -r from to; do "$GO" mod edit -replace="$from=$to"; done \
    < <(sed -n 's#^replace \([^ ]*\) => \([^ ./][^ ]*\) \(v[^ ]*\)$#\1 \2@\3#p' "$upstream_mod")
  "$GO" mod edit -require="$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION"
  cat >tools.go <<'GO'
//go:build tools

// Records the command this module builds; never compiled.
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
GO
  "$GO" mod tidy
  "$GO" build -mod=mod -v -trimpath -ldflags "-s -w" -o "$1" "$SEAWEEDFS_MODULE/weed"
}

mkdir -p "$DIR"
exec 9>"$DIR.lock"
flock 9 # two builds would write the same folder
if [[ -x "$BIN" ]]; then # built while this one waited for the lock
  echo "$BIN"
  exit 0
fi
log "SeaweedFS $SEAWEEDFS_VERSION: building (about 15 minutes cold on 2 cores; log: $DIR/build.log)"
start=$SECONDS
rm -rf "${DIR:?}/bin" "${DIR:?}/bin.tmp" && mkdir -p "$DIR/bin.tmp"
if ! (build "$DIR/bin.tmp/weed") >"$DIR/build.log" 2>&1; then
  log "FAILED after $((SECONDS - start))s; last lines of $DIR/build.log:"
  tail -n 15 "$DIR/build.log" >&2
  exit 1
fi
mv "$DIR/bin.tmp" "$DIR/bin"
echo "$((SECONDS - start))" >"$DIR/build-seconds"
log "built in $((SECONDS - start))s -> $BIN"
echo "$BIN"
