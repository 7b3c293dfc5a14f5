"""cos-ray: Ray batch sweeps over the Chain-of-Steps of Wan2.2 video reasoning models.

Importing this package is cheap on purpose: torch, diffusers and ray are imported only by the modules that run
models or clusters, so that `cos-ray --help` and every command that runs no model start in well under a second.
"""

__version__ = "0.1.0"
