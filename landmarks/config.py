"""One place for versions, image references and project-wide defaults.

Stage-specific defaults (ingest concurrency, split ratios, hyperparameters) live in
the options dataclass of the stage that uses them; this module holds what several
layers share: what is pinned, and where images come from.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from landmarks.errors import LandmarksError

try:
    __version__ = metadata.version("landmarks")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

PYTHON_VERSION = "3.11"
KFP_VERSION = "2.17.3"
TENSORFLOW_VERSION = "2.21.0"
# Kubeflow training-operator v1 (TFJob, kubeflow.org/v1); last release of branch release-1.9.
TRAINING_OPERATOR_VERSION = "v1.9.4"

# Images: the registry and tag are the only parts a deployment changes. `make images` pushes
# to $LANDMARKS_REGISTRY with an immutable tag and `make compile` reads the same values, so
# the compiled pipeline names exactly what was pushed. The tag is $LANDMARKS_IMAGE_TAG, else
# `<version>-<git sha>` in a source checkout (`-dirty` when it has uncommitted changes), else
# the package version. Images bake their own registry and tag in (Dockerfile ENV), so code
# running inside them resolves the same references.
DEFAULT_REGISTRY = "ghcr.io/landmarks-platform"
# `or`: make exports the variables it passes on, so an unset one arrives as "".
REGISTRY = os.environ.get("LANDMARKS_REGISTRY") or DEFAULT_REGISTRY
# Build targets of images/Dockerfile; an image is `<registry>/landmarks-<role>:<tag>`.
IMAGE_ROLES = ("component", "trainer", "trainer-cpu")
# `gpu` (default) or `cpu`: which trainer image TFJobs run; kind clusters have no GPUs.
TRAINER_VARIANTS = {"gpu": "trainer", "cpu": "trainer-cpu"}
DIRTY_SUFFIX = "-dirty"
# Docker's rule for tags: up to 128 characters, not starting with `.` or `-`.
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def git_revision(root: Path) -> tuple[str, bool] | None:
    """(short SHA, dirty) of the checkout at `root`, or None outside a git checkout.

    Only `root` itself counts: a package installed into a virtualenv that happens to sit
    inside some other repository must not take that repository's SHA.
    """
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sha, bool(status.strip())


def default_image_tag(version: str, revision: tuple[str, bool] | None) -> str:
    """`<version>-<sha>[-dirty]`; the version alone without a revision."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", version)  # `0.0.0+unknown` is no valid tag
    if revision is None:
        return tag
    sha, dirty = revision
    return f"{tag}-{sha}{DIRTY_SUFFIX if dirty else ''}"


def check_image_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise LandmarksError(
            f"LANDMARKS_IMAGE_TAG={tag!r} is not a valid image tag: use up to 128 letters, "
            "digits, '_', '.' and '-', not starting with '.' or '-'"
        )
    return tag


@functools.cache
def image_tag() -> str:
    """The tag of every project image: computed once per process (git runs at most once)."""
    explicit = os.environ.get("LANDMARKS_IMAGE_TAG")
    if explicit:
        return check_image_tag(explicit)
    return default_image_tag(__version__, git_revision(Path(__file__).resolve().parents[1]))


def image(role: str, registry: str | None = None, tag: str | None = None) -> str:
    """Reference of one of the project's images (a role of IMAGE_ROLES)."""
    if role not in IMAGE_ROLES:
        raise ValueError(f"unknown image role {role!r}; expected one of {', '.join(IMAGE_ROLES)}")
    return f"{registry or REGISTRY}/landmarks-{role}:{tag or image_tag()}"


def trainer_role() -> str:
    """The trainer image role that $LANDMARKS_TRAINER_VARIANT (gpu or cpu) selects."""
    variant = os.environ.get("LANDMARKS_TRAINER_VARIANT", "gpu")
    if variant not in TRAINER_VARIANTS:
        raise LandmarksError(
            f"LANDMARKS_TRAINER_VARIANT={variant!r}: expected one of {', '.join(TRAINER_VARIANTS)}"
        )
    return TRAINER_VARIANTS[variant]


def __getattr__(name: str) -> str:
    # Computed on first use, not at import: `landmarks ingest` never needs an image
    # reference, so it never pays for running git.
    if name == "IMAGE_TAG":
        return image_tag()
    if name == "COMPONENT_IMAGE":
        return image("component")
    if name == "TRAINER_IMAGE":
        return image(trainer_role())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A descriptive User-Agent: Wikimedia and other hosts throttle or block anonymous clients.
USER_AGENT = f"landmarks-platform/{__version__} (+https://github.com/landmarks-platform/landmarks)"


_VALUES = {
    "version": lambda: __version__,
    "python": lambda: PYTHON_VERSION,
    "tensorflow": lambda: TENSORFLOW_VERSION,
    "registry": lambda: REGISTRY,
    "tag": image_tag,
    "trainer-role": trainer_role,
    # KFP's artifact-store Secret, which make deploy copies to the training namespace.
    "kfp-artifact-secret": lambda: _kfp_artifact_secret(),
}


def _kfp_artifact_secret() -> str:
    from landmarks.storage.s3 import KFP_MINIO_SECRET

    return KFP_MINIO_SECRET


def main(argv: list[str] | None = None) -> int:
    """Print one fact for shells and make: `value NAME` or `image ROLE`.

    Run as `python -c 'import sys; from landmarks.config import main; sys.exit(main(sys.argv[1:]))'`
    (`python -m landmarks.config` would import this module twice, as the package imports it).
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) == 2 and args[0] == "image":
            print(image(args[1]))
        elif len(args) == 2 and args[0] == "value" and args[1] in _VALUES:
            print(_VALUES[args[1]]())
        else:
            print(
                f"usage: value {{{','.join(_VALUES)}}} | image {{{','.join(IMAGE_ROLES)}}}",
                file=sys.stderr,
            )
            return 2
    except (LandmarksError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
