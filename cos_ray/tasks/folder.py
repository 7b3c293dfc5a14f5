"""One task sample on disk: a folder holding `first_frame.png` and `prompt.txt` (the VBVR-Bench sample layout).

A VBVR-Bench sample (`{split}/{task}/{idx}/`) also holds `final_frame.png` and `ground_truth.mp4`; samples that
cos-ray generates add `foreground_mask.png` (for the probes) and `task.json` (family, parameters, geometry for the
family's scorer). Those files are optional here and recorded when present; `require` makes them mandatory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cos_ray.bounded_read import FileRefused, ReadLimits, read_json
from cos_ray.errors import InputError, UsageError

FIRST_FRAME = "first_frame.png"
PROMPT = "prompt.txt"
FINAL_FRAME = "final_frame.png"
GROUND_TRUTH = "ground_truth.mp4"
FOREGROUND_MASK = "foreground_mask.png"
META = "task.json"
SPLITS = ("In-Domain_50", "Out-of-Domain_50")  # VBVR-Bench's split folders, the only ones VBVR-EvalKit walks
META_LIMITS = ReadLimits(max_bytes=4 << 20, max_nodes=1_000_000)  # a generated maze's task.json: about 1 KB, depth 3


@dataclass(frozen=True)
class TaskInput:
    """What one trajectory is conditioned on, and where its ground truth lies (None: the sample has none)."""

    task_id: str
    image_path: Path
    prompt: str
    split: str | None = None  # In-Domain_50 / Out-of-Domain_50 for a VBVR-layout sample
    task: str | None = None  # the VBVR task folder name (e.g. "O-39_maze_data-generator", "maze")
    family: str | None = None  # the scorer family: task.json's "family", else by task id (`tasks.vbvr_ids`); None: none
    final_frame_path: Path | None = None
    ground_truth_path: Path | None = None
    foreground_mask_path: Path | None = None
    meta_path: Path | None = None

    def image(self):
        """The first frame as an RGB PIL image (read lazily: sweeps hold thousands of tasks)."""
        from cos_ray.tasks.inputs import open_image

        return open_image(self.image_path, self.task_id)  # InputError when it went bad since it was checked

    def meta(self) -> dict:
        """task.json of a generated sample ({} when the sample has none)."""
        if self.meta_path is None:
            return {}
        return read_meta(self.meta_path, self.task_id)


def read_meta(path: Path, sample) -> dict:
    """A sample's task.json, read bounded (`cos_ray.bounded_read`: a regular file, 4 MiB, nesting 32); InputError
    naming the sample and what is wrong with the file."""
    try:
        meta = read_json(path, META_LIMITS, META)
    except FileRefused as err:
        raise InputError(f"task {sample}: {META} {err.reason}") from None
    if not isinstance(meta, dict):
        raise InputError(f"task {sample}: {META} must hold a JSON object, got {type(meta).__name__}")
    return meta


def read_task_folder(folder: str | Path, task_id: str | None = None, require: tuple[str, ...] = ()) -> TaskInput:
    """Read a sample folder; a missing or unreadable file is an error naming the sample and the file."""
    folder = Path(folder).expanduser()
    from cos_ray.tasks.inputs import read_prompt

    if not folder.is_dir():
        raise InputError(f"task {folder}: not a folder (expected one holding {FIRST_FRAME} and {PROMPT})")
    for name in (FIRST_FRAME, PROMPT, *require):
        if not (folder / name).is_file():
            there = (folder / name).is_symlink() or (folder / name).exists()
            raise InputError(f"task {folder}: {name} is not a regular file" if there else f"task {folder}: missing {name}")
    prompt = read_prompt(folder / PROMPT, str(folder))  # InputError: too long, not UTF-8, empty

    def optional(name: str) -> Path | None:
        return folder / name if (folder / name).is_file() else None

    split = folder.parent.parent.name if folder.parent.parent.name in SPLITS else None
    task = folder.parent.name if split is not None else None
    meta_path = optional(META)
    family = read_meta(meta_path, folder).get("family") if meta_path is not None else None
    if family is None:  # a VBVR task folder: its built-in scorer by official task id (None: EvalKit scores it)
        from cos_ray.tasks.vbvr_ids import scorer_family

        family = scorer_family(task)
    return TaskInput(
        task_id=task_id or (f"{split}/{task}/{folder.name}" if split else folder.name),
        image_path=folder / FIRST_FRAME,
        prompt=prompt,
        split=split,
        task=task,
        family=family,
        final_frame_path=optional(FINAL_FRAME),
        ground_truth_path=optional(GROUND_TRUTH),
        foreground_mask_path=optional(FOREGROUND_MASK),
        meta_path=meta_path,
    )


def task_from_image(image: str | Path, prompt: str) -> TaskInput:
    """A task given on the command line as an image and a prompt."""
    from cos_ray.path_checks import existing_file
    from cos_ray.tasks.inputs import open_image

    if not prompt or not prompt.strip():
        raise UsageError("--prompt: expected a non-empty prompt")
    path = existing_file(image, "--image", "image")
    open_image(path, "--image")  # decoded now, before any model time: a broken image is one line at once
    return TaskInput(task_id=path.stem, image_path=path, prompt=prompt.strip())
