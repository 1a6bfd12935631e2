# shellcheck shell=bash
# Sourced by scripts/kfp/build.sh and support-images.sh: the base of the images that need a
# shell or Debian's packages. KFP_DEBIAN_BASE names one; else the Debian stand-in of
# scripts/images/standin-bases.sh, built when missing. Needs REPO_ROOT.

debian_base() {
  if [[ -n "${KFP_DEBIAN_BASE:-}" ]]; then
    echo "$KFP_DEBIAN_BASE"
    return
  fi
  local ref
  ref="$("$REPO_ROOT/scripts/images/standin-bases.sh" --refs | sed -n 's/^PYTHON_IMAGE=//p')"
  docker image inspect "$ref" >/dev/null 2>&1 || "$REPO_ROOT/scripts/images/standin-bases.sh" >/dev/null
  echo "$ref"
}
