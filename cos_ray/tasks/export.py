"""Lay out generated videos as VBVR-EvalKit reads them: `{out}/{method}/seed-{seed}/{split}/{task}/{idx}.mp4`.

One folder per method and seed, so EvalKit's `evaluate.py --videos_path {out}/{method}/seed-{seed} --gt_path BENCH`
scores each; `{idx}` is the sample folder's name (five digits), as EvalKit pairs `{idx}.mp4` with `{gt}/{idx}/`.
Everything is checked first; each method/seed folder is assembled in a staging folder and renamed into place.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.tasks.folder import SPLITS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _idx(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 99999:
        return f"{value:05d}"
    if isinstance(value, str) and re.fullmatch(r"\d{5}", value):
        return value
    raise UsageError(f"export idx: expected a 5-digit sample id (00000) or an integer, got {value!r}")


def export_evalkit(entries, out: str | Path, overwrite: bool = False) -> list[Path]:
    """entries: (method, seed, split, task, idx, video_path) tuples; returns the method/seed folders written."""
    out = Path(out).expanduser()
    plan: dict[tuple[str, int], dict[Path, Path]] = {}
    for entry in entries:
        if len(entry) != 6:
            raise UsageError(f"export entry {entry!r}: expected (method, seed, split, task, idx, video_path)")
        method, seed, split, task, idx, video = entry
        if not isinstance(method, str) or not _NAME.match(method):
            raise UsageError(f"export method {method!r}: expected a folder name (letters, digits, . _ + -)")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UsageError(f"export seed {seed!r}: expected an integer")
        if split not in SPLITS:
            raise UsageError(f"export split {split!r}: expected one of {', '.join(SPLITS)} (the folders EvalKit walks)")
        if not isinstance(task, str) or not _NAME.match(task):
            raise UsageError(f"export task {task!r}: expected a folder name")
        video = Path(video)
        if not video.is_file():
            raise UsageError(f"export video {video}: no such file ({method}, seed {seed}, {split}/{task}/{idx})")
        relative = Path(split) / task / f"{_idx(idx)}.mp4"
        files = plan.setdefault((method, seed), {})
        if relative in files:
            raise UsageError(f"export: two videos for {method}/seed-{seed}/{relative}")
        files[relative] = video
    folders = {key: out / key[0] / f"seed-{key[1]}" for key in plan}
    if not overwrite:
        for folder in folders.values():
            if folder.exists():
                raise UsageError(f"{folder}: already exists; remove it or pass overwrite")
    written = []
    for key, files in plan.items():
        folder = folders[key]
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = folder.parent / f".{folder.name}.staging-{uuid.uuid4().hex[:8]}"
        try:
            for relative, video in files.items():
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(video, staging / relative)
            if folder.exists():
                old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(folder, old)
                os.rename(staging, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        written.append(folder)
    return written
