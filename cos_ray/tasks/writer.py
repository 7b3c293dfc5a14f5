"""Write one generated sample as a VBVR-layout folder, all or nothing.

The files go into a hidden staging folder beside the target, which is renamed into place only once every file is
written: a crash or a bad input never leaves a half-written sample that a reader would take for a whole one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.tasks.folder import FINAL_FRAME, FIRST_FRAME, FOREGROUND_MASK, GROUND_TRUTH, META, PROMPT
from cos_ray.tasks.sample import GeneratedSample


def write_sample(folder: str | Path, sample: GeneratedSample, fps: int) -> Path:
    """Write `folder/{first_frame.png, prompt.txt, final_frame.png, ground_truth.mp4, foreground_mask.png, task.json}`."""
    from cos_ray.media import write_image, write_json, write_video

    folder = Path(folder)
    if folder.exists():
        raise UsageError(f"{folder}: already exists; choose another --out or remove it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        write_image(staging / FIRST_FRAME, sample.first_frame)
        write_image(staging / FINAL_FRAME, sample.final_frame)
        write_image(staging / FOREGROUND_MASK, sample.foreground.astype("uint8") * 255)  # (H, W) 0 / 255
        write_video(staging / GROUND_TRUTH, sample.frames, fps=fps)
        (staging / PROMPT).write_text(sample.prompt.strip() + "\n", encoding="utf-8")
        write_json(staging / META, sample.meta)
        os.chmod(staging, 0o755)
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
