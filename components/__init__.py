"""KFP v2 components: thin shells that call the `landmarks` package.

Each component is a lightweight Python component whose `base_image` is one of the
project's images (`components.base.COMPONENT_ROLES`: the component image, or the CPU
trainer image where TensorFlow is needed), each with `landmarks` and kfp installed, so
the same definition runs under `kfp.local.SubprocessRunner` on a laptop and in a cluster
pod. KFP ships only the function body: every import lives inside it.
"""
