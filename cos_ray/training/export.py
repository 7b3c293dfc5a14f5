"""Write the trained pipeline in diffusers format: the directory `cos_ray.model.loader` reads like any checkpoint."""

from __future__ import annotations

from pathlib import Path


def export_pipeline(pipe, target: Path, extra: dict | None = None) -> Path:
    """save_pretrained into a staging directory, then swap it in (a reader never sees a half-written preset).
    `extra` maps file names to text written beside the weights (training.json)."""
    from cos_ray.staging import staged_folder

    target = Path(target)
    with staged_folder(target, overwrite=True, flag="export") as staging:
        pipe.save_pretrained(staging, safe_serialization=True)
        for name, text in (extra or {}).items():
            (staging / name).write_text(text)
    return target
