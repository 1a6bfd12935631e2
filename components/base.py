"""The decorator every component uses: one place for each component's image and install policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kfp import dsl

from landmarks import config

# The image role (landmarks.config.IMAGE_ROLES) each component's function runs in, by
# function name. The role's image must hold every package the function's body ends up
# importing, since nothing is pip-installed at pod start.
COMPONENT_ROLES = {
    "ingest": "component",
    "split": "component",
    # The training steps only build and follow TFJobs (landmarks.pipeline_steps.training):
    # no TensorFlow in their pod; the replicas run the trainer image.
    "train": "component",
    # Loads the trained Keras models and draws the report: needs TensorFlow and matplotlib.
    # The CPU image, because prediction on a test split needs no GPU node.
    "evaluate": "trainer-cpu",
}


def landmarks_component(func: Callable[..., Any] | None = None, **options: Any) -> Any:
    """`dsl.component` with the image COMPONENT_ROLES names and no pip install.

    Used bare (`@landmarks_component`) or with more component options
    (`@landmarks_component(task_config_passthroughs=...)`).
    """

    def wrap(function: Callable[..., Any]) -> Any:
        role = COMPONENT_ROLES.get(function.__name__)
        if role is None:
            raise KeyError(
                f"component {function.__name__!r} has no image role: add it to "
                "components.base.COMPONENT_ROLES"
            )
        # The image already holds kfp and the package: no pip install at pod start, and no
        # package index needed when the local runner executes the same component.
        return dsl.component(
            function, base_image=config.image(role), install_kfp_package=False, **options
        )

    return wrap if func is None else wrap(func)
