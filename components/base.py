"""The decorator every component uses: one place for the image and install policy."""

from __future__ import annotations

import functools

from kfp import dsl

from landmarks.config import COMPONENT_IMAGE

# The image already holds kfp and the package: no pip install at pod start, and no
# package index needed when the local runner executes the same component.
landmarks_component = functools.partial(
    dsl.component, base_image=COMPONENT_IMAGE, install_kfp_package=False
)
