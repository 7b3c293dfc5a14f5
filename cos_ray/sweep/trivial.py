"""Trivial baselines, made on the driver without model time: `first_frame` (the input image held for the whole
video) and `ground_truth` (the task's reference video). They go through the same scoring and rows as model runs, so
every score can be read next to what doing nothing, and doing everything right, would get.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from cos_ray.errors import UsageError


@dataclass
class TrivialMember:
    """What `cos_ray.sweep.results.unit_results` reads of a member (a model run's is `MemberResult`)."""

    seed: int
    member: int
    video: object  # `# (frames, height, width, 3)` float32 in [0, 1]
    steps: list = field(default_factory=list)  # no denoising steps
    filmstrip: object = None
    filmstrip_steps: list = field(default_factory=list)
    probes: dict = field(default_factory=dict)


def trivial_video(method: str, task, frames: int):
    """`# (frames, H, W, 3)` float32 in [0, 1]: the first frame repeated `frames` times, or the reference video."""
    import numpy as np

    if method == "first_frame":
        from cos_ray.tasks.scorers.frames import read_rgb

        image = read_rgb(task.image_path).astype(np.float32) / 255.0  # (H, W, 3)
        return np.repeat(image[None], frames, axis=0)
    if method == "ground_truth":
        from cos_ray.media import read_video

        if task.ground_truth_path is None:
            raise UsageError(f"task {task.task_id}: no ground_truth.mp4, which the ground_truth method shows")
        return read_video(task.ground_truth_path).astype(np.float32) / 255.0
    raise UsageError(f"method {method!r} is not a trivial baseline (first_frame, ground_truth)")


def run_trivial(unit) -> tuple[list[TrivialMember], list]:
    """(members, the 'worker' that made them all: this driver, as a `WorkerInfo`) for a unit of a trivial method."""
    from cos_ray.cluster.outcome import WorkerInfo
    from cos_ray.provenance import software_versions

    video = trivial_video(unit.method, unit.task.load(), unit.settings.frames)
    members = [TrivialMember(seed, index, video) for index, seed in enumerate(unit.seeds)]
    driver = WorkerInfo(node=socket.gethostname(), pid=os.getpid(), device="none", versions=software_versions())
    return members, [driver]
