"""Wan2.2 models: checkpoint inspection, the loader real checkpoints and the tiny preset share, the tiny preset.

Nothing here knows of Ray. `checkpoint` and `source` are pure Python; `loader` and `tiny` import torch/diffusers.
"""
