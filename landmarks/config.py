"""One place for versions, image references and project-wide defaults.

Stage-specific defaults (ingest concurrency, split ratios, hyperparameters) live in
the options dataclass of the stage that uses them; this module holds what several
layers share: what is pinned, and where images come from.
"""

from __future__ import annotations

import os
from importlib import metadata

try:
    __version__ = metadata.version("landmarks")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

PYTHON_VERSION = "3.11"
KFP_VERSION = "2.17.3"
TENSORFLOW_VERSION = "2.21.0"
# Kubeflow training-operator v1 (TFJob, kubeflow.org/v1); last release of branch release-1.9.
TRAINING_OPERATOR_VERSION = "v1.9.4"

# Images: the registry and tag are the only parts a deployment changes.
# `make images` pushes to $LANDMARKS_REGISTRY with an immutable tag ($LANDMARKS_IMAGE_TAG,
# by default the package version); `make compile` reads the same variables.
DEFAULT_REGISTRY = "ghcr.io/landmarks-platform"
REGISTRY = os.environ.get("LANDMARKS_REGISTRY", DEFAULT_REGISTRY)
IMAGE_TAG = os.environ.get("LANDMARKS_IMAGE_TAG", __version__)


def image(role: str, registry: str | None = None, tag: str | None = None) -> str:
    """Reference of one of the project's images (`component`, `trainer`, `trainer-cpu`)."""
    return f"{registry or REGISTRY}/landmarks-{role}:{tag or IMAGE_TAG}"


COMPONENT_IMAGE = image("component")
TRAINER_IMAGE = image("trainer")

# A descriptive User-Agent: Wikimedia and other hosts throttle or block anonymous clients.
USER_AGENT = f"landmarks-platform/{__version__} (+https://github.com/landmarks-platform/landmarks)"
