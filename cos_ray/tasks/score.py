"""Score a video, or each step's decoded x̂0, against a task sample: the five VBVR dimensions and the weighted score.

A video is `# (frames, H, W, 3)`, uint8 or floats in [0, 1], any size: it is resized to the task's first frame.
An x̂0 filmstrip from the engine is `# (steps, frames, h, w, 3)` uint8; each step's row is scored as a video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cos_ray.errors import UsageError
from cos_ray.tasks.families import get_family
from cos_ray.tasks.folder import FINAL_FRAME, META, TaskInput
from cos_ray.tasks.scorers import frames as frame_io
from cos_ray.tasks.scorers import vbvr


@dataclass(frozen=True)
class TaskScore:
    """One video's scores: `task_specific` and `overall` (VBVR's weighted score) are what rows carry."""

    family: str
    task_specific: float
    overall: float
    dimensions: dict = field(default_factory=dict)  # the five VBVR dimensions, task_specific included
    details: dict = field(default_factory=dict)  # the task-specific scorer's parts

    def correct(self, threshold: float | None = None) -> bool:
        return self.task_specific >= (get_family(self.family).threshold if threshold is None else threshold)


@dataclass(frozen=True)
class References:
    """What scoring one sample reads from disk, read once for all the steps of a trajectory."""

    family: str
    first: np.ndarray  # (H, W, 3) uint8
    final: np.ndarray  # (H, W, 3) uint8
    meta: dict


def references(task: TaskInput, family: str | None = None) -> References:
    """Read the sample's first and final frames (and task.json where the family's scorer needs it)."""
    fam = get_family(family or task.family)
    if task.final_frame_path is None:
        raise UsageError(f"task {task.task_id}: missing {FINAL_FRAME} (needed to score)")
    meta = task.meta()
    if fam.needs_meta and meta.get("family") != fam.name:
        raise UsageError(f"task {task.task_id}: missing {META} of family {fam.name} (the {fam.name} scorer reads it)")
    first = frame_io.read_rgb(task.image_path)
    final = frame_io.read_rgb(task.final_frame_path)
    if final.shape != first.shape:
        import cv2

        final = cv2.resize(final, (first.shape[1], first.shape[0]), interpolation=cv2.INTER_LINEAR)
    return References(fam.name, first, final, meta)


def score_video(video, task: TaskInput | References, family: str | None = None) -> TaskScore:
    """Score one video `# (frames, H, W, 3)` against a task (or its references, to avoid re-reading them)."""
    refs = task if isinstance(task, References) else references(task, family)
    frames = frame_io.prepare(video, refs.first.shape[:2])  # (<= 100, H, W, 3) uint8
    dims = vbvr.dimensions(frames, refs.first, refs.final)
    task_specific, details = get_family(refs.family).score(frames, refs.first, refs.final, refs.meta)
    dims["task_specific"] = float(np.clip(task_specific, 0.0, 1.0))
    return TaskScore(refs.family, dims["task_specific"], vbvr.weighted(dims), dims, details)


def score_steps(filmstrip, task: TaskInput | References, family: str | None = None) -> list[TaskScore]:
    """Score each step's decoded x̂0 `# (steps, frames, h, w, 3)`: one TaskScore per step, in order."""
    filmstrip = np.asarray(filmstrip)
    if filmstrip.ndim != 5:
        raise UsageError(f"filmstrip: expected (steps, frames, H, W, 3), got {filmstrip.shape}")
    refs = task if isinstance(task, References) else references(task, family)
    return [score_video(row, refs) for row in filmstrip]
