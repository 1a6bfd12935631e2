"""Landmark recognition platform: the logic behind every pipeline stage.

The KFP components, the command line and the trainer entry point are thin shells
over the modules of this package, so every stage can be run and tested on its own.
"""

from landmarks.config import __version__

__all__ = ["__version__"]
