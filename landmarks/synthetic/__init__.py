"""The embedded dataset: synthetic landmark photos in GLDv2 format, and an HTTP server for them."""

from landmarks.synthetic.embedded import EmbeddedSource, embedded_source
from landmarks.synthetic.generate import DEFAULT_BASE_URL, MAX_CLASSES, generate, render
from landmarks.synthetic.serve import rewrite_base_url, serve

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_CLASSES",
    "EmbeddedSource",
    "embedded_source",
    "generate",
    "render",
    "rewrite_base_url",
    "serve",
]
