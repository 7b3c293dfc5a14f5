"""Lay out generated videos as VBVR-EvalKit reads them: `{out}/{method}/seed-{seed}/{split}/{task}/{idx}.mp4`, and
the ground truth it pairs them with: `{out}/gt/{split}/{task}/{idx}/` (first_frame.png, prompt.txt, final_frame.png,
ground_truth.mp4 - a VBVR-Bench sample folder).

One folder per method and seed, so EvalKit's `evaluate.py --videos_path {out}/{method}/seed-{seed} --gt_path {out}/gt`
scores each; `{idx}` is the sample folder's name (five digits), as EvalKit pairs `{idx}.mp4` with `{gt}/{idx}/`.
Everything is checked first; each method/seed folder (and `gt`) is assembled in a staging folder and renamed into place.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.staging import staged_folder
from cos_ray.tasks.folder import FINAL_FRAME, FIRST_FRAME, GROUND_TRUTH, PROMPT, SPLITS

GT_FOLDER = "gt"  # beside the method folders; no method is named so (`cos_ray.spec.methods.METHODS`)
GT_FILES = ((FIRST_FRAME, True), (PROMPT, True), (FINAL_FRAME, False), (GROUND_TRUTH, False))  # (name, required)
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
    if GT_FOLDER in {method for method, _ in plan}:
        raise UsageError(f"export method {GT_FOLDER!r}: the name of the ground-truth folder; rename the method")
    folders = {key: out / key[0] / f"seed-{key[1]}" for key in plan}
    for folder in folders.values():
        check_folder_target(folder, overwrite)  # every target judged before the first is written
    return [_place(folders[key], files) for key, files in plan.items()]


def check_folder_target(folder: Path, overwrite: bool) -> None:
    """UsageError unless `folder` can be written as a whole: absent (or, with `overwrite`, a folder), under parents
    that are folders or absent. A file, FIFO or broken link where a folder is expected is never replaced."""
    from cos_ray.path_checks import folder_or_nothing

    folder_or_nothing(folder, "", "folder to export into")
    if folder.exists() and not overwrite:
        raise UsageError(f"{folder}: already exists; remove it or pass overwrite")


def export_ground_truth(entries, out: str | Path, overwrite: bool = False) -> Path:
    """entries: (split, task, idx, sample_folder) tuples; writes `{out}/gt/{split}/{task}/{idx}/`, returns `{out}/gt`.

    A sample folder must hold first_frame.png and prompt.txt; final_frame.png and ground_truth.mp4 are copied when
    present (EvalKit scores the final-frame dimension 0 without them)."""
    target = Path(out).expanduser() / GT_FOLDER
    files: dict[Path, Path] = {}
    seen: set[Path] = set()
    for entry in entries:
        if len(entry) != 4:
            raise UsageError(f"ground-truth entry {entry!r}: expected (split, task, idx, sample_folder)")
        split, task, idx, sample = entry
        if split not in SPLITS:
            raise UsageError(f"ground-truth split {split!r}: expected one of {', '.join(SPLITS)}")
        if not isinstance(task, str) or not _NAME.match(task):
            raise UsageError(f"ground-truth task {task!r}: expected a folder name")
        relative = Path(split) / task / _idx(idx)
        if relative in seen:
            raise UsageError(f"ground truth: two samples for {relative}")
        seen.add(relative)
        for name, required in GT_FILES:
            if (Path(sample) / name).is_file():
                files[relative / name] = Path(sample) / name
            elif required:
                raise UsageError(f"ground truth {relative}: sample folder {sample} has no {name}")
    check_folder_target(target, overwrite)
    return _place(target, files)


def _place(folder: Path, files: dict[Path, Path]) -> Path:
    """Copy {relative: source} into a staging folder beside `folder`, then rename it into place (replacing it)."""
    with staged_folder(folder, overwrite=True, flag="export folder") as staging:
        for relative, source in files.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging / relative)
    return folder
