"""Turn (model, task, sampler settings, seeds) into one `WanImageToVideoPipeline.__call__`.

Every trajectory cos-ray runs - bare, probed or ensembled - goes through `pipeline_arguments`, so they all sample
exactly as diffusers does. The seeds of a call are one batch: member i starts from `torch.Generator().manual_seed(
seeds[i])` on the CPU, so its initial noise equals that of a single-seed run with the same seed on any device.
"""

from __future__ import annotations

from typing import Any

from cos_ray.errors import UsageError
from cos_ray.model.loader import LoadedModel
from cos_ray.sampler import SamplerSettings, first_frame_size
from cos_ray.tasks.folder import TaskInput


def frame_size(model: LoadedModel, image_size: tuple[int, int], settings: SamplerSettings) -> tuple[int, int]:
    """(height, width): the settings' own, or the first frame's own rounded up to VAE x patch (capped by max_area)."""
    pipe = model.pipe
    multiple = pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1]
    if settings.height is not None:
        for name in ("height", "width"):
            if getattr(settings, name) % multiple:
                raise UsageError(f"{name}: {getattr(settings, name)} is not a multiple of {multiple} (VAE x patch)")
        return settings.height, settings.width
    return first_frame_size(image_size[0], image_size[1], multiple, settings.max_area)


def make_scheduler(model: LoadedModel, settings: SamplerSettings):
    """A fresh scheduler for one call, from the checkpoint's scheduler config with the settings' flow shift."""
    from cos_ray.engine.schedulers import make_scheduler_from_config

    return make_scheduler_from_config(model.scheduler_config, settings.scheduler, settings.shift)


def configure_pipeline(model: LoadedModel, settings: SamplerSettings) -> None:
    """Set what the pipeline reads from itself rather than from its arguments: scheduler and expert boundary (and
    refuse a guidance that a CFG-parallel model cannot run)."""
    pipe = model.pipe
    two_experts = pipe.transformer_2 is not None
    if two_experts and settings.boundary is None:
        raise UsageError("boundary: this model has two experts; give the switch ratio (VBVR: 0.875)")
    if not two_experts and settings.boundary is not None:
        raise UsageError(f"boundary: this model has one transformer; set boundary to null (got {settings.boundary})")
    from cos_ray.engine.cfg_parallel import check_guidance
    from cos_ray.engine.hook_points import experts_of

    check_guidance(experts_of(pipe).values(), settings.guidance)  # CFG-parallel needs the uncond pass
    pipe.scheduler = make_scheduler(model, settings)
    pipe.register_to_config(boundary_ratio=settings.boundary)


def pipeline_arguments(
    model: LoadedModel, task: TaskInput, settings: SamplerSettings, seeds: list[int], output_type: str = "np"
) -> dict[str, Any]:
    """Keyword arguments of `pipe(...)` for one batch of seeds on one task."""
    import torch

    from cos_ray.tasks.protocol import settings_for_task

    if not seeds:
        raise UsageError("seeds: expected at least one seed")
    settings = settings_for_task(settings, task)  # frames: null -> the ground truth's count (sweeps resolve it first)
    image = task.image()
    height, width = frame_size(model, image.size, settings)
    return dict(
        image=image,
        prompt=task.prompt,
        negative_prompt=settings.negative_prompt,
        height=height,
        width=width,
        num_frames=settings.frames,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        guidance_scale_2=settings.guidance_2 if model.pipe.transformer_2 is not None else None,
        num_videos_per_prompt=len(seeds),
        generator=[torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds],
        max_sequence_length=settings.max_sequence_length,
        output_type=output_type,
    )


def sample(model: LoadedModel, task: TaskInput, settings: SamplerSettings, seeds: list[int], progress: bool = False):
    """Run the bare pipeline; returns videos as a float array `# (seeds, frames, height, width, 3)` in [0, 1]."""
    import torch

    configure_pipeline(model, settings)
    model.pipe.set_progress_bar_config(disable=not progress)
    with torch.inference_mode():
        return model.pipe(**pipeline_arguments(model, task, settings, seeds)).frames
