"""The VBVR evaluation's per-sample protocol: generate the ground truth's own frame count.

The evaluation script (`eval_vbvr_bench.py` of the VBVR-Wan2.2 training repository) reads each sample's frame count
with `ffprobe -count_packets ... stream=nb_read_packets ground_truth.mp4` and generates that many frames (DiffSynth
then rounds the count to 4k+1: `cos_ray.sampler.round_frames`). ffprobe is not installed everywhere; imageio-ffmpeg's
bundled ffmpeg counts the same packets (`-c copy`, no decoding), so that is what reads it here.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cos_ray.errors import InputError


@functools.lru_cache(maxsize=4096)
def _count(path: str, mtime_ns: int, size: int) -> int:
    import imageio_ffmpeg

    try:
        frames, _seconds = imageio_ffmpeg.count_frames_and_secs(path)
    except (RuntimeError, OSError, ValueError) as err:
        raise InputError(f"{path}: cannot count its frames ({err}); expected a readable video") from None
    if frames < 1:
        raise InputError(f"{path}: no video frame found; expected a readable video")
    return int(frames)


def ground_truth_frames(path: str | Path) -> int:
    """The number of video packets (= frames) of `path`, as the evaluation's ffprobe call counts them."""
    path = Path(path)
    try:
        stat = os.stat(path)
    except OSError as err:
        raise InputError(f"{path}: cannot read it ({err.strerror})") from None
    return _count(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def prefetch_ground_truths(settings_and_tasks, workers: int = 8) -> None:
    """Count the ground truths of many samples at once (threads over ffmpeg processes, ~60 ms each), for those whose
    settings leave `frames` null; `settings_for_task` then finds the counts cached. Items: (settings, task)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = set()
    for settings, task in settings_and_tasks:
        folder = getattr(task, "folder", None)
        if settings.frames is None and folder is not None and (Path(folder) / "ground_truth.mp4").is_file():
            paths.add(Path(folder) / "ground_truth.mp4")
    if len(paths) > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(ground_truth_frames, sorted(paths)))


def settings_for_task(settings, task):
    """`settings` for one sample (a TaskRef or TaskInput): `frames: null` becomes the sample's ground-truth count
    (4k+1 as DiffSynth rounds it; 81 when the sample has no ground_truth.mp4). Other settings are returned as is."""
    if settings.frames is not None:
        return settings
    task_input = task.load() if hasattr(task, "load") else task
    path = task_input.ground_truth_path
    return settings.for_sample(ground_truth_frames(path) if path is not None else None)
