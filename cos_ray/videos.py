"""One task's videos - one seed or an in-process ensemble - with filmstrips and the run record, written to a folder: what
`cos-ray generate` makes (its Ray twin: `cos_ray.cluster.videos_on_ray`)."""

from __future__ import annotations

import platform
from pathlib import Path

from cos_ray import __version__
from cos_ray.model.loader import LoadedModel
from cos_ray.sampler import SamplerSettings
from cos_ray.tasks.folder import TaskInput


def run_record(model: LoadedModel, task: TaskInput, settings: SamplerSettings, seeds: list[int], ensemble=None) -> dict:
    """The JSON written beside the videos: enough to reproduce them."""
    import dataclasses

    import diffusers
    import torch

    return {
        "cos_ray_version": __version__,
        "model": model.name,
        "family": model.family,
        "lora": model.lora,
        "lora_applied": model.lora_records,  # per expert: sha256, convention, layers injected, scale, fused
        "layout": model.layout.format,
        "device": model.device,
        "dtype": str(model.dtype).removeprefix("torch."),
        "task": {"task_id": task.task_id, "image": str(task.image_path), "prompt": task.prompt},
        "seeds": seeds,
        "ensemble": dataclasses.asdict(ensemble) if ensemble is not None else None,
        "settings": settings.as_dict(),
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version()},
    }


def write_members(members, out: Path, fps: int) -> list[Path]:
    """Each member's video, per-step records and filmstrip; one member writes into `out`, several into member-K/."""
    from cos_ray.media import labelled_filmstrip, shown_frames, write_image, write_json, write_video

    videos = []
    for result in members:
        folder = out if len(members) == 1 else out / f"member-{result.member}"
        videos.append(write_video(folder / "video.mp4", result.video, fps=fps))
        write_json(folder / "steps.json", {"seed": result.seed, "member": result.member, "steps": result.steps,
                                           "filmstrip_steps": result.filmstrip_steps})
        if result.filmstrip is not None:
            frames = shown_frames(len(result.video), result.filmstrip.shape[1])
            write_image(folder / "filmstrip.png", labelled_filmstrip(result.filmstrip, result.filmstrip_steps, frames))
    return videos


def generate(model: LoadedModel, task: TaskInput, settings: SamplerSettings, seed: int, out: Path,
             ensemble=None, x0=None) -> list[Path]:
    """Sample `seed` (or an ensemble's members seed..seed+N-1 as one batch) and write the results into `out`."""
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.media import write_json

    seeds = ensemble.member_seeds(seed) if ensemble is not None else [seed]
    members = run_trajectory(model, task, settings, seeds, ensemble=ensemble, x0=x0, progress=True)
    videos = write_members(members, out, settings.fps)
    record = run_record(model, task, settings, seeds, ensemble)
    if len(members) > 1:
        record["answer"] = ensemble_answer(members)
    write_json(out / "settings.json", record)
    return videos


def ensemble_answer(members) -> dict:
    """Which output is the ensemble's answer: every member's own (`member-K/`), and the consensus - the member whose
    final x̂0 is nearest the members' mean (`cos_ray.probes.consensus`)."""
    from cos_ray.probes.consensus import consensus

    chosen, distances = consensus([member.final_latent.float().cpu().numpy() for member in members])
    return {"members": [f"member-{member.member}" for member in members],
            "consensus": f"member-{members[chosen].member}", "x0_to_mean": distances}
