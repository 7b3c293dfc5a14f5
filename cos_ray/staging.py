"""A folder written whole or not at all: files go into a staging folder beside the target, which is renamed into
place only when everything is written (a crash, Ctrl-C or a full disk leaves the target as it was, and no staging
folder behind). Replacing an existing folder is explicit (`overwrite`); a file where a folder is expected is an error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.path_checks import folder_or_nothing


def check_target(folder: Path, overwrite: bool, flag: str = "--out") -> None:
    """Refuse a target that is not a folder (`cos_ray.path_checks`), or a folder with files in it unless `overwrite`
    (judged before any work)."""
    folder = folder_or_nothing(folder, flag)
    if folder.is_dir() and not overwrite and any(folder.iterdir()):
        raise UsageError(f"{flag} {folder}: is not empty; pass --overwrite to replace it whole, or choose another folder")


@contextlib.contextmanager
def staged_folder(folder: Path, overwrite: bool = False, flag: str = "--out"):
    """Yield a staging folder; on success it replaces `folder` (checked with `check_target` first)."""
    folder = Path(folder)
    check_target(folder, overwrite, flag)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(folder, old)
            try:
                os.rename(staging, folder)
            except BaseException:
                os.rename(old, folder)  # the folder as it was
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
