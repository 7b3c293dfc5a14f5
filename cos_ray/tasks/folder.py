"""One task sample on disk: a folder holding `first_frame.png` and `prompt.txt` (the VBVR-Bench sample layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cos_ray.errors import UsageError

FIRST_FRAME = "first_frame.png"
PROMPT = "prompt.txt"


@dataclass(frozen=True)
class TaskInput:
    """What one trajectory is conditioned on."""

    task_id: str
    image_path: Path
    prompt: str

    def image(self):
        """The first frame as an RGB PIL image (read lazily: sweeps hold thousands of tasks)."""
        from PIL import Image

        with Image.open(self.image_path) as image:
            return image.convert("RGB")


def read_task_folder(folder: str | Path, task_id: str | None = None) -> TaskInput:
    """Read a sample folder; a missing or unreadable file is an error naming the sample and the file."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UsageError(f"task {folder}: not a folder (expected one holding {FIRST_FRAME} and {PROMPT})")
    for name in (FIRST_FRAME, PROMPT):
        if not (folder / name).is_file():
            raise UsageError(f"task {folder}: missing {name}")
    prompt = (folder / PROMPT).read_text(encoding="utf-8").strip()
    if not prompt:
        raise UsageError(f"task {folder}: {PROMPT} is empty")
    return TaskInput(task_id=task_id or folder.name, image_path=folder / FIRST_FRAME, prompt=prompt)


def task_from_image(image: str | Path, prompt: str) -> TaskInput:
    """A task given on the command line as an image and a prompt."""
    path = Path(image).expanduser()
    if not path.is_file():
        raise UsageError(f"--image: file {path} does not exist")
    if not prompt or not prompt.strip():
        raise UsageError("--prompt: expected a non-empty prompt")
    return TaskInput(task_id=path.stem, image_path=path, prompt=prompt.strip())
