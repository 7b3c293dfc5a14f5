"""Write the trained pipeline in diffusers format: the directory `cos_ray.model.loader` reads like any checkpoint."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def export_pipeline(pipe, target: Path, extra: dict | None = None) -> Path:
    """save_pretrained into a staging directory, then swap it in (a reader never sees a half-written preset).
    `extra` maps file names to text written beside the weights (training.json)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        pipe.save_pretrained(staging, safe_serialization=True)
        for name, text in (extra or {}).items():
            (staging / name).write_text(text)
        if target.exists():
            old = target.with_name(f".{target.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
