#!/usr/bin/env bash
# Stand-ins for the Dockerfile's two base images, built on this machine where Docker Hub
# cannot be reached (CI): images/Dockerfile then builds unchanged on them.
#   python      stand-in for python:<PYTHON_VERSION>.x-slim-bookworm: Debian bookworm's
#               python3 (the same minor) with venv, pip, the CA bundle, `python` on PATH
#   tensorflow  stand-in for tensorflow/tensorflow:<TENSORFLOW_VERSION>-gpu: the python
#               stand-in with PyPI's tensorflow==<TENSORFLOW_VERSION> in the system Python,
#               where the official image has it (no CUDA libraries: CPU only)
# The names start with landmarks-standin/ and never look official, so an image built on a
# stand-in can never be taken for (or pushed as) one built on the real base.
#
#   usage: scripts/images/standin-bases.sh [--refs]
#   Builds the stand-ins that are missing (an existing one is reused), then prints
#   PYTHON_IMAGE=<ref> and TENSORFLOW_GPU_IMAGE=<ref> on stdout (the build args of
#   images/Dockerfile); --refs prints them without building. Progress goes to stderr.
#   env: PYTHON (the project's Python, for landmarks/config.py), LANDMARKS_CACHE (debootstrap
#        root filesystems are cached there, default ~/.cache/landmarks), DEBIAN_MIRROR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
CACHE="${LANDMARKS_CACHE:-$HOME/.cache/landmarks}/standin"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm # Debian 12: its python3 is 3.11, the minor of landmarks.config.PYTHON_VERSION
PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

config() {
  "$PYTHON" -c 'import sys; from landmarks.config import main; sys.exit(main(sys.argv[1:]))' "$@"
}

[[ -x "$PYTHON" ]] || die "no Python at $PYTHON: run make venv (or set PYTHON)"
python_version="$(config value python)"
tf_version="$(config value tensorflow)"
PYTHON_REF="landmarks-standin/python:${python_version}-${SUITE}"
TENSORFLOW_REF="landmarks-standin/tensorflow:${tf_version}-pypi"

print_refs() {
  printf 'PYTHON_IMAGE=%s\nTENSORFLOW_GPU_IMAGE=%s\n' "$PYTHON_REF" "$TENSORFLOW_REF"
}

if [[ "${1:-}" == --refs ]]; then
  print_refs
  exit 0
fi
[[ $# -eq 0 ]] || die "usage: $0 [--refs]"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# Certificates this machine trusts beyond Debian's (a TLS-inspecting proxy's CA): the
# stand-ins trust them too, or pip inside the builds could not reach PyPI from here. They
# are public certificates, and only the local stand-ins carry them.
extra_cas=()
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  extra_cas=(/usr/local/share/ca-certificates/*.crt)
fi

build_python_standin() {
  # The cache key covers everything that goes into the root filesystem.
  local key rootfs_tar dir
  key="$(
    {
      echo "$SUITE $PACKAGES $MIRROR"
      ((${#extra_cas[@]})) && cat "${extra_cas[@]}"
    } | sha256sum | cut -c1-16
  )"
  rootfs_tar="$CACHE/$SUITE-minbase-$key.tar"
  if [[ ! -s "$rootfs_tar" ]]; then
    command -v debootstrap >/dev/null || {
      log "installing debootstrap (apt)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    mkdir -p "$CACHE"
    dir="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    # shellcheck disable=SC2064 # expand now: dir is local
    trap "rm -rf '$dir'" EXIT
    log "debootstrap --variant=minbase $SUITE (+ $PACKAGES) into $dir"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$dir" "$MIRROR" >&2
    if ((${#extra_cas[@]})); then
      cp "${extra_cas[@]}" "$dir/usr/local/share/ca-certificates/"
      chroot "$dir" update-ca-certificates >&2
    fi
    # Like the official slim image: no package lists or downloaded .debs left behind.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/log/*.log
    tar -C "$dir" -cf "$rootfs_tar.part" . && mv "$rootfs_tar.part" "$rootfs_tar"
    rm -rf "$dir"
    trap - EXIT
  else
    log "reusing the cached root filesystem $rootfs_tar"
  fi
  # An imported image has no config: give it the official image's PATH and locale (the
  # Dockerfile appends to PATH), and point pip at Debian's CA bundle (bookworm's pip in a
  # venv would otherwise use its own certifi copy, without the extra CAs).
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    --message "landmarks stand-in for python:${python_version}-slim-${SUITE} (debootstrap $SUITE minbase + $PACKAGES)" \
    - "$PYTHON_REF" <"$rootfs_tar" >/dev/null
}

build_tensorflow_standin() {
  local context
  context="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$context'" RETURN
  DOCKER_BUILDKIT=0 docker build \
    --file "$HERE/tensorflow-standin.Dockerfile" \
    --build-arg "PYTHON_IMAGE=$PYTHON_REF" \
    --build-arg "TENSORFLOW_VERSION=$tf_version" \
    --tag "$TENSORFLOW_REF" \
    "$context" >&2
}

for pair in "python:$PYTHON_REF" "tensorflow:$TENSORFLOW_REF"; do
  name="${pair%%:*}"
  ref="${pair#*:}"
  if have_image "$ref"; then
    log "stand-in $ref exists: reusing it"
    continue
  fi
  log "building stand-in $ref"
  started=$SECONDS
  "build_${name}_standin"
  log "built $ref in $((SECONDS - started))s ($(docker image inspect --format '{{.Size}}' "$ref" | awk '{printf "%.0f MB", $1/1e6}'))"
done
print_refs
