#!/usr/bin/env bash
# Builds the project's images from images/Dockerfile, one target per role, tagged with the
# references landmarks/config.py gives (`make compile` bakes the same ones into the
# pipeline), and pushes them.
#   usage: scripts/deploy/images.sh [--push] [--kind-load CLUSTER] ROLE...
#   env:   LANDMARKS_REGISTRY, LANDMARKS_IMAGE_TAG (see landmarks/config.py),
#          IMAGE_PLATFORM (e.g. linux/amd64 for GKE nodes; empty: this machine's),
#          ALLOW_DIRTY=1 to push a `-dirty` tag (dev registries only: such tags are mutable),
#          BASE_IMAGES=official (default: the Dockerfile's Docker Hub bases) or standin
#          (bases built on this machine by scripts/images/standin-bases.sh, for machines
#          without Docker Hub; such images are for local tests and are never pushed).
# Tags are immutable: a tag already in the registry is neither rebuilt nor pushed again.
# The classic builder (DOCKER_BUILDKIT=0) builds the Dockerfile, so neither buildx nor a
# BuildKit frontend from Docker Hub is needed.
set -euo pipefail
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env_file

push=0
kind_cluster=""
roles=()
while (($#)); do
  case "$1" in
    --push) push=1 ;;
    --kind-load)
      kind_cluster="${2:?--kind-load needs a cluster name}"
      shift
      ;;
    -*) die "unknown option $1 (usage: $0 [--push] [--kind-load CLUSTER] ROLE...)" ;;
    *) roles+=("$1") ;;
  esac
  shift
done
((${#roles[@]})) || die "usage: $0 [--push] [--kind-load CLUSTER] ROLE..."

[[ -x "$PYTHON" ]] || die "no Python at $PYTHON: run make venv (or set PYTHON)"
tag="$(config value tag)" || die "cannot resolve the image tag (see above)"
refs=()
for role in "${roles[@]}"; do
  ref="$(config image "$role")" || exit 1 # the printer says which roles exist
  refs+=("$ref")
done

# Checked before anything is built: a dirty tree gives a tag whose content can change.
if ((push)) && [[ "$tag" == *-dirty && "${ALLOW_DIRTY:-0}" != 1 ]]; then
  die "refusing to push images tagged '$tag': the checkout has uncommitted changes, so the tag does not pin the source. Commit first, or set LANDMARKS_IMAGE_TAG to a tag of your own, or ALLOW_DIRTY=1 for a dev registry"
fi

base_images="${BASE_IMAGES:-official}"
case "$base_images" in
  official | standin) ;;
  *) die "BASE_IMAGES=$base_images: expected official (Docker Hub bases) or standin (built here)" ;;
esac
# A stand-in is not the base the Dockerfile names: what is built on one must not reach a
# registry under the project's tag.
if ((push)) && [[ "$base_images" == standin ]]; then
  die "refusing to push images built on stand-in bases (BASE_IMAGES=standin): build them with PUSH=0, or use the official bases"
fi

needs=(docker)
[[ -n "$kind_cluster" ]] && needs+=(kind)
require "${needs[@]}"

base_args=()
if [[ "$base_images" == standin ]]; then
  log "building or reusing the stand-in bases (scripts/images/standin-bases.sh)"
  standins="$(PYTHON="$PYTHON" "$REPO_ROOT/scripts/images/standin-bases.sh")" \
    || die "the stand-in bases could not be built (see above)"
  while IFS= read -r line; do
    [[ -n "$line" ]] && base_args+=(--build-arg "$line")
  done <<<"$standins"
fi

tf_version="$(config value tensorflow)"
version="$(config value version)"
vcs_ref="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
registry="$(config value registry)"

# `docker manifest inspect` answers without pulling; any other error (no login, no network)
# is not proof of absence, so the push goes ahead and reports the registry's own error.
in_registry() {
  docker manifest inspect "$1" >/dev/null 2>&1
}

for i in "${!roles[@]}"; do
  role="${roles[$i]}"
  ref="${refs[$i]}"
  if ((push)) && [[ "$tag" != *-dirty ]] && in_registry "$ref"; then
    log "$ref is already in the registry: tags are immutable, skipping its build and push"
    continue
  fi
  log "building $ref (target $role, $base_images bases)"
  platform_args=()
  [[ -n "${IMAGE_PLATFORM:-}" ]] && platform_args=(--platform "$IMAGE_PLATFORM")
  started=$SECONDS
  DOCKER_BUILDKIT=0 docker build \
    --file "$REPO_ROOT/images/Dockerfile" \
    --target "$role" \
    --tag "$ref" \
    "${platform_args[@]}" \
    "${base_args[@]}" \
    --build-arg "TENSORFLOW_VERSION=$tf_version" \
    --build-arg "LANDMARKS_REGISTRY=$registry" \
    --build-arg "LANDMARKS_IMAGE_TAG=$tag" \
    --build-arg "LANDMARKS_VERSION=$version" \
    --build-arg "VCS_REF=$vcs_ref" \
    "$REPO_ROOT"
  log "built $ref in $((SECONDS - started))s"
  if ((push)); then
    log "pushing $ref"
    docker push "$ref"
  fi
  if [[ -n "$kind_cluster" ]]; then
    log "loading $ref into kind cluster $kind_cluster"
    kind load docker-image "$ref" --name "$kind_cluster"
  fi
done

log "images (tag $tag, $base_images bases):"
for ref in "${refs[@]}"; do
  size="$(docker image inspect --format '{{.Size}}' "$ref" 2>/dev/null || true)"
  if [[ -n "$size" ]]; then
    printf '  %s  %s MB\n' "$ref" "$((size / 1000000))"
  else
    printf '  %s  (not built here: already in the registry)\n' "$ref"
  fi
done
