"""Library notices that say nothing to a cos-ray user, silenced where they are made (one logger, one message each),
never by hiding warnings wholesale.

- transformers, on importing diffusers' Wan pipelines without torchvision: "`CLIPImageProcessor` requires torchvision
  (not installed); falling back to ..." - Wan2.2's pipelines here run without an image encoder (A14B and TI2V-5B
  condition on the image latent), so no image processor is ever built.
- transformers' "Loading weights" bar for the text encoder: seconds-long, printed once per load, between cos-ray's
  own progress lines.
"""

from __future__ import annotations

import logging

_IMPORT_LOGGER = "transformers.utils.import_utils"


class _DropTorchvisionFallback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed); falling back to" not in record.getMessage()


def quiet_libraries() -> None:
    """Install the filters (idempotent); call before diffusers' pipelines are imported."""
    logger = logging.getLogger(_IMPORT_LOGGER)
    if not any(isinstance(existing, _DropTorchvisionFallback) for existing in logger.filters):
        logger.addFilter(_DropTorchvisionFallback())
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
