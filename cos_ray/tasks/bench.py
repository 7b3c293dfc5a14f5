"""Many samples at once: a VBVR-Bench tree (`{split}/{task}/{idx}/`), a folder of sample folders, or one sample.

A spec names one path; `read_tasks` finds out which of the three it is, so sweeps need not care.
"""

from __future__ import annotations

from pathlib import Path

from cos_ray.errors import InputError, UsageError
from cos_ray.tasks.folder import FINAL_FRAME, FIRST_FRAME, GROUND_TRUTH, SPLITS, TaskInput, read_task_folder

BENCH_FILES = (FINAL_FRAME, GROUND_TRUTH)  # besides first_frame.png and prompt.txt, every VBVR sample has these


def _read(folder: Path, bad: list | None, require: tuple[str, ...] = ()) -> list[TaskInput]:
    """[the sample], or [] with its InputError appended to `bad` (a collector: every bad sample reported at once)."""
    if bad is None:
        return [read_task_folder(folder, require=require)]
    try:
        return [read_task_folder(folder, require=require)]
    except InputError as err:
        bad.append(err)
        return []


def read_bench(root: str | Path, splits=None, tasks=None, bad: list | None = None) -> list[TaskInput]:
    """Every sample of a VBVR-layout tree, sorted by split, task and index; each must hold all four files.
    With `bad` (a list), a sample that cannot be read is appended to it as an InputError instead of raised."""
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
                samples.extend(_read(sample, bad, BENCH_FILES))
    return samples


def read_tasks(path: str | Path, bad: list | None = None) -> list[TaskInput]:
    """One sample folder, a VBVR-layout tree, or a folder whose sub-folders are samples (`bad`: see read_bench)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UsageError(f"tasks {path}: not a folder")
    if (path / FIRST_FRAME).exists():
        return _read(path, bad)
    if any((path / split).is_dir() for split in SPLITS):
        return read_bench(path, bad=bad)
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UsageError(f"tasks {path}: expected {FIRST_FRAME}, VBVR split folders or sample folders, found none")
    return [sample for p in folders for sample in _read(p, bad)]
