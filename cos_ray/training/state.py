"""Checkpoints of a training run: written atomically (temporary file + rename), so a kill never leaves half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path


def save_atomic(obj, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def append_log(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)
