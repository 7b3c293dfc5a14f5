"""`cos-ray generate`: one task, one seed (or one in-process batch of seeds), videos and settings written to a folder."""

from __future__ import annotations

import platform
from pathlib import Path

from cos_ray import __version__
from cos_ray.model.loader import LoadedModel
from cos_ray.sampler import SamplerSettings
from cos_ray.tasks.folder import TaskInput


def run_record(model: LoadedModel, task: TaskInput, settings: SamplerSettings, seed: int) -> dict:
    """The JSON written beside a video: enough to reproduce it."""
    import diffusers
    import torch

    return {
        "cos_ray_version": __version__,
        "model": model.name,
        "family": model.family,
        "lora": model.lora,
        "device": model.device,
        "dtype": str(model.dtype).removeprefix("torch."),
        "task": {"task_id": task.task_id, "image": str(task.image_path), "prompt": task.prompt},
        "seed": seed,
        "settings": settings.as_dict(),
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version()},
    }


def generate(model: LoadedModel, task: TaskInput, settings: SamplerSettings, seed: int, out: Path) -> Path:
    """Sample one seed and write `video.mp4` and `settings.json` into `out`; returns the video's path."""
    from cos_ray.engine.call import sample
    from cos_ray.media import write_json, write_video

    videos = sample(model, task, settings, [seed], progress=True)  # (1, frames, height, width, 3)
    video = write_video(out / "video.mp4", videos[0], fps=settings.fps)
    write_json(out / "settings.json", run_record(model, task, settings, seed))
    return video
