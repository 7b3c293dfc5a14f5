"""Name a model the way users do (`tiny`, `tiny-ti2v`, or a local directory) and find its family and directory.

Pure Python unless a preset must be written: spec validation and `--dry-run` use `model_family` without torch.
"""

from __future__ import annotations

from pathlib import Path

from cos_ray.model.checkpoint import inspect_checkpoint

PRESET_FAMILIES = {"tiny": "tiny-a14b", "tiny-ti2v": "tiny-ti2v", "tiny-reasoner": "tiny-a14b",
                   "tiny-reasoner-4step": "tiny-a14b"}
# Presets shipped as trained weights inside the package (diffusers format); the others are built from configs.
SHIPPED_PRESETS = {name: Path(__file__).parent / "presets" / name for name in ("tiny-reasoner", "tiny-reasoner-4step")}
# The distilled student runs under its own sampler preset (cos_ray.sampler.SAMPLER_PRESETS, same name).


def is_preset(model: str | Path) -> bool:
    return str(model) in PRESET_FAMILIES


def model_family(model: str | Path) -> str:
    """The family whose sampler defaults apply: tiny-a14b, tiny-ti2v, a14b or ti2v."""
    if is_preset(model):
        return PRESET_FAMILIES[str(model)]
    return inspect_checkpoint(model).family


def model_directory(model: str | Path) -> Path:
    """The diffusers-format directory the loader reads (a preset is written to the cache on first use)."""
    if str(model) in SHIPPED_PRESETS:
        return SHIPPED_PRESETS[str(model)]
    if is_preset(model):
        from cos_ray.model.tiny import tiny_checkpoint

        return tiny_checkpoint(str(model))
    return Path(model).expanduser().resolve()
