"""Many samples at once: a VBVR-Bench tree (`{split}/{task}/{idx}/`), a folder of sample folders, or one sample.

A spec names one path; `read_tasks` finds out which of the three it is, so sweeps need not care.
"""

from __future__ import annotations

from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.tasks.folder import FINAL_FRAME, FIRST_FRAME, GROUND_TRUTH, SPLITS, TaskInput, read_task_folder

BENCH_FILES = (FINAL_FRAME, GROUND_TRUTH)  # besides first_frame.png and prompt.txt, every VBVR sample has these


def read_bench(root: str | Path, splits=None, tasks=None) -> list[TaskInput]:
    """Every sample of a VBVR-layout tree, sorted by split, task and index; each must hold all four files."""
    root = Path(root).expanduser()
    splits = list(splits) if splits is not None else [s for s in SPLITS if (root / s).is_dir()]
    for split in splits:
        if split not in SPLITS:
            raise UsageError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        if not (root / split).is_dir():
            raise UsageError(f"{root}: missing split folder {split}")
    if not splits:
        raise UsageError(f"{root}: no VBVR split folder ({' or '.join(SPLITS)})")
    samples = []
    for split in splits:
        task_dirs = sorted(p for p in (root / split).iterdir() if p.is_dir() and not p.name.startswith("."))
        if tasks is not None:
            missing = set(tasks) - {p.name for p in task_dirs}
            if missing:
                raise UsageError(f"{root / split}: no task folder {', '.join(sorted(missing))}")
            task_dirs = [p for p in task_dirs if p.name in set(tasks)]
        for task_dir in task_dirs:
            for sample in sorted(p for p in task_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                samples.append(read_task_folder(sample, require=BENCH_FILES))
    return samples


def read_tasks(path: str | Path) -> list[TaskInput]:
    """One sample folder, a VBVR-layout tree, or a folder whose sub-folders are samples."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UsageError(f"tasks {path}: not a folder")
    if (path / FIRST_FRAME).exists():
        return [read_task_folder(path)]
    if any((path / split).is_dir() for split in SPLITS):
        return read_bench(path)
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UsageError(f"tasks {path}: expected {FIRST_FRAME}, VBVR split folders or sample folders, found none")
    return [read_task_folder(p) for p in folders]
