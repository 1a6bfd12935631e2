#!/usr/bin/env bash
# Builds the offline kind node image, landmarks-kind/node:<Kubernetes version>, on this machine:
# nothing is pulled (`kind build node-image` and kindest/node need registries).
#
#   usage: scripts/kind/node-image.sh [--force] [--print-ref]
#   --print-ref: print the image's name and exit; --force: rebuild an existing image.
#   env: LANDMARKS_CACHE (Go builds and the Debian root filesystem, default ~/.cache/landmarks),
#        PYTHON (the project's Python, for the Debian stand-in base).
#
# What goes in, all pinned in scripts/test-cluster/versions.env and scripts/kind/versions.env:
#   - the Debian stand-in base (scripts/images/standin-bases.sh: debootstrap bookworm) with
#     Debian's systemd, containerd, runc, CNI plugins (node-base.Dockerfile);
#   - kind's node files (entrypoint, units, containerd config) read from the kind module in the
#     Go module cache, with three changes to containerd's config: kubeadm's pause image, no
#     fuse-overlayfs plugin (not built), restrict_oom_score_adj (where root lacks
#     CAP_SYS_RESOURCE every sandbox fails without it; harmless elsewhere);
#   - kubelet, kubeadm, kubectl (scripts/test-cluster/build.sh kubernetes-node), crictl;
#   - the control-plane images kubeadm runs, under the names `kubeadm config images list`
#     prints, imported into containerd's store: apiserver, controller-manager, scheduler, etcd
#     and CoreDNS as images of the static binaries, kube-proxy on Debian, pause = catatonit.
# Intermediate images are named landmarks-kind/<name>:<tag> in the Docker engine; only inside
# the node's own containerd do they carry kubeadm's registry.k8s.io names.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck disable=SC1091 # KEY=VALUE pins only
source "$REPO_ROOT/scripts/test-cluster/versions.env"
# shellcheck disable=SC1091
source "$HERE/versions.env"
CACHE="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}"
NODE_REF="$KIND_NODE_IMAGE_REPO:$KUBERNETES_VERSION"
BASE_REF="landmarks-kind/node-base:$KUBERNETES_VERSION"
export DOCKER_BUILDKIT=0 # the classic builder: BuildKit is not everywhere (not on CI's engine)

log() { printf '%s node-image: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'node-image: error: %s\n' "$*" >&2
  exit 1
}
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
size_of() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1e6}'; }

force=0
case "${1:-}" in
  --print-ref) echo "$NODE_REF" && exit 0 ;;
  --force) force=1 ;;
  "") ;;
  *) die "usage: $0 [--force] [--print-ref]" ;;
esac
if have_image "$NODE_REF" && ((!force)); then
  log "$NODE_REF exists ($(size_of "$NODE_REF")): reusing it (--force rebuilds)"
  exit 0
fi
for tool in docker go jq containerd ctr; do
  command -v "$tool" >/dev/null || die "$tool is needed to build the node image"
done
started=$SECONDS

"$REPO_ROOT/scripts/test-cluster/build.sh" kubernetes kubernetes-node etcd
"$HERE/build.sh" crictl coredns
k8s_bin="$CACHE/test-cluster/kubernetes-$KUBERNETES_VERSION/bin"
node_bin="$CACHE/test-cluster/kubernetes-node-$KUBERNETES_VERSION/bin"
etcd_bin="$CACHE/test-cluster/etcd-$ETCD_VERSION/bin"
crictl_bin="$("$HERE/build.sh" --bin crictl)"
coredns_bin="$("$HERE/build.sh" --bin coredns)"

base_image="$("$REPO_ROOT/scripts/images/standin-bases.sh" --refs | sed -n 's/^PYTHON_IMAGE=//p')"
have_image "$base_image" || "$REPO_ROOT/scripts/images/standin-bases.sh" >/dev/null
have_image "$base_image" || die "the Debian stand-in base $base_image was not built"

kind_dir="$(cd / && go mod download -json "$KIND_MODULE@$KIND_VERSION" | jq -r .Dir)"
[[ -d "$kind_dir/images/base/files" ]] || die "no images/base/files in $KIND_MODULE@$KIND_VERSION ($kind_dir)"

work="$(mktemp -d "${TMPDIR:-/tmp}/kind-node-image.XXXXXX")"
containerd_pid=""
cleanup() {
  if [[ -n "$containerd_pid" ]]; then
    kill "$containerd_pid" 2>/dev/null || true
    wait "$containerd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Names kubeadm will ask containerd for, e.g. registry.k8s.io/kube-apiserver:v1.36.3.
declare -A WANTED=()
while read -r ref; do
  name="${ref##*/}"
  WANTED["${name%%:*}"]="$ref"
done < <("$node_bin/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION")
for name in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns pause; do
  [[ -n "${WANTED[$name]:-}" ]] || die "kubeadm $KUBERNETES_VERSION lists no $name image"
done

# --- the node's system --------------------------------------------------------------------------
ctx="$work/base"
mkdir -p "$ctx/kind-files" "$ctx/bin" "$ctx/node"
cp -r "$kind_dir/images/base/files/." "$ctx/kind-files/"
chmod -R u+w "$ctx/kind-files" # the module cache is read-only
rm -f "$ctx/kind-files/usr/local/bin/clean-install" \
  "$ctx/kind-files/etc/systemd/system/containerd-fuse-overlayfs.service"
config="$ctx/kind-files/etc/containerd/config.toml"
sed -i -e "s#sandbox_image = \".*\"#sandbox_image = \"${WANTED[pause]}\"#" \
  -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$config"
# Drop the [proxy_plugins."fuse-overlayfs"] table: nothing serves its socket here.
awk '/^\[proxy_plugins/ {skip = 1; next} /^\[/ {skip = 0} !skip' "$config" >"$config.new"
mv "$config.new" "$config"
grep -q "sandbox_image = \"${WANTED[pause]}\"" "$config" || die "could not set the pause image in kind's $config"
grep -q 'restrict_oom_score_adj = true' "$config" || die "could not set restrict_oom_score_adj in kind's $config"
mkdir -p "$ctx/kind-files/kind"
echo "$KUBERNETES_VERSION" >"$ctx/kind-files/kind/version"
cp "$node_bin/kubelet" "$node_bin/kubeadm" "$node_bin/kubectl" "$crictl_bin/crictl" "$ctx/bin/"
cp "$HERE/node/landmarks-cni.sh" "$HERE/node/landmarks-cni.service" "$ctx/node/"
log "building $BASE_REF on $base_image (kind $KIND_VERSION files, Kubernetes $KUBERNETES_VERSION)"
step=$SECONDS
docker build --file "$HERE/node-base.Dockerfile" --build-arg "BASE_IMAGE=$base_image" \
  --label "org.opencontainers.image.description=landmarks offline kind node system: kind $KIND_VERSION files, Kubernetes $KUBERNETES_VERSION" \
  --tag "$BASE_REF" "$ctx" >&2
log "built $BASE_REF in $((SECONDS - step))s ($(size_of "$BASE_REF"))"

# --- the control-plane images -------------------------------------------------------------------
# An image holding one static binary, made with `docker import` (no base image to pull).
static_image() { # $1: local ref, $2: binary, $3: entrypoint (JSON array)
  local dir="$work/static"
  rm -rf "$dir" && mkdir -p "$dir/usr/local/bin" "$dir/tmp" "$dir/etc"
  cp "$2" "$dir/usr/local/bin/"
  chmod 1777 "$dir/tmp"
  echo 'nobody:x:65534:65534:nobody:/:/sbin/nologin' >"$dir/etc/passwd"
  tar -C "$dir" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin' --change "ENTRYPOINT $3" \
    --message "landmarks offline kind: $(basename "$2") $KUBERNETES_VERSION build" - "$1" >/dev/null
}
step=$SECONDS
declare -A LOCAL=()
for name in kube-apiserver kube-controller-manager kube-scheduler; do
  LOCAL[$name]="landmarks-kind/$name:$KUBERNETES_VERSION"
  static_image "${LOCAL[$name]}" "$k8s_bin/$name" "[\"/usr/local/bin/$name\"]"
done
# kubeadm names etcd by the version it pairs with; the binary is the pinned $ETCD_VERSION.
LOCAL[etcd]="landmarks-kind/etcd:$ETCD_VERSION"
static_image "${LOCAL[etcd]}" "$etcd_bin/etcd" '["/usr/local/bin/etcd"]'
LOCAL[coredns]="landmarks-kind/coredns:$COREDNS_VERSION"
static_image "${LOCAL[coredns]}" "$coredns_bin/coredns" '["/usr/local/bin/coredns"]'
LOCAL[pause]="landmarks-kind/pause:catatonit"
docker run --rm --entrypoint cat "$BASE_REF" /usr/bin/catatonit >"$work/catatonit"
chmod 0755 "$work/catatonit"
static_image "${LOCAL[pause]}" "$work/catatonit" '["/usr/local/bin/catatonit", "-P"]'
LOCAL[kube-proxy]="landmarks-kind/kube-proxy:$KUBERNETES_VERSION"
mkdir -p "$work/kube-proxy" && cp "$node_bin/kube-proxy" "$work/kube-proxy/"
docker build --file "$HERE/kube-proxy.Dockerfile" --build-arg "BASE_IMAGE=$base_image" \
  --tag "${LOCAL[kube-proxy]}" "$work/kube-proxy" >&2
log "control-plane images built in $((SECONDS - step))s"

# --- preload: import them into a containerd store that becomes the node's /var/lib/containerd --
# A private containerd on this machine (own root, state and socket; the engine's is untouched)
# writes the store; the node's containerd (Debian's, the same 1.6 line) reads it at boot.
step=$SECONDS
final="$work/node"
mkdir -p "$final/containerd" "$work/state" "$work/opt"
cat >"$work/containerd.toml" <<TOML
version = 2
root = "$final/containerd"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/state/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
TOML
containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
ctr_() { ctr --address "$work/state/containerd.sock" --namespace k8s.io "$@"; }
for ((i = 0; i < 50; i++)); do
  ctr_ version >/dev/null 2>&1 && break
  kill -0 "$containerd_pid" 2>/dev/null || die "the private containerd exited: $(tail -n 5 "$work/containerd.log")"
  sleep 0.2
done
ctr_ version >/dev/null || die "the private containerd did not answer: $(tail -n 5 "$work/containerd.log")"
for name in "${!LOCAL[@]}"; do
  docker save "${LOCAL[$name]}" | ctr_ images import --no-unpack --all-platforms - >/dev/null
  ctr_ images tag "docker.io/${LOCAL[$name]}" "${WANTED[$name]}" >/dev/null
  ctr_ images rm "docker.io/${LOCAL[$name]}" >/dev/null
done
ctr_ images ls -q | sort >"$work/preloaded"
for name in "${!WANTED[@]}"; do
  grep -qx "${WANTED[$name]}" "$work/preloaded" || die "${WANTED[$name]} is missing from the preloaded store"
done
kill "$containerd_pid" && wait "$containerd_pid" 2>/dev/null || true
containerd_pid=""
log "preloaded $(wc -l <"$work/preloaded") images in $((SECONDS - step))s: $(tr '\n' ' ' <"$work/preloaded")"

step=$SECONDS
docker build --file "$HERE/node.Dockerfile" --build-arg "NODE_BASE=$BASE_REF" \
  --label "org.opencontainers.image.description=landmarks offline kind node: Kubernetes $KUBERNETES_VERSION, kind $KIND_VERSION files, images preloaded" \
  --tag "$NODE_REF" "$final" >&2
log "built $NODE_REF in $((SECONDS - started))s in all ($(size_of "$NODE_REF"); final layer $((SECONDS - step))s)"
echo "$((SECONDS - started))" >"$CACHE/kind/node-image-$KUBERNETES_VERSION.build-seconds"
