"""Paths a command is given, judged before any work: a folder where a folder is expected, a regular file where a file
is - else one line naming the flag, the path and what was expected (a UsageError, exit 2).

Without these, a file given as an output folder surfaced as NotADirectoryError or FileExistsError tracebacks from deep
inside a writer (sometimes after a model was loaded), a symbolic link loop as a RuntimeError from `Path.resolve`, a
FIFO as a hang. Files are read through `cos_ray.bounded_read`, which checks again as it opens them.
"""

from __future__ import annotations

import stat
from pathlib import Path

from cos_ray.errors import UsageError


def _kind(path: Path) -> str | None:
    """What is at `path` ("folder", "file", "FIFO", ...), None if nothing; OSError (a loop, no permission) raised."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (ENOTDIR: a parent is not a folder)
        if path.is_symlink():
            return "broken symbolic link"
        return None
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _article(kind: str) -> str:
    return "an" if kind[:1].lower() in "aeiou" else "a"


def folder_or_nothing(path: str | Path, label: str, what: str = "folder") -> Path:
    """An output folder: a folder, or nothing yet under parents that are folders (or nothing)."""
    path = Path(path).expanduser()
    shown = f"{label} {path}" if label else str(path)
    try:
        kind = _kind(path)
        if kind == "folder":
            return path
        if kind is not None:
            raise UsageError(f"{shown}: is {_article(kind)} {kind}, not a folder; expected a {what} (or nothing there "
                             "yet)")
        for parent in path.parents:
            parent_kind = _kind(parent)
            if parent_kind == "folder":
                break
            if parent_kind is not None:
                raise UsageError(f"{shown}: {parent} is {_article(parent_kind)} {parent_kind}, not a folder; the "
                                 f"{what} cannot be made under it")
    except OSError as err:  # a symbolic link loop (ELOOP), a name too long, no permission
        raise UsageError(f"{shown}: cannot be used as a {what} ({err.strerror or err})") from None
    return path


def existing_folder(path: str | Path, label: str, what: str = "folder") -> Path:
    """An input folder that exists."""
    path = Path(path).expanduser()
    shown = f"{label} {path}" if label else str(path)
    try:
        kind = _kind(path)
    except OSError as err:
        raise UsageError(f"{shown}: cannot be read ({err.strerror or err}); expected a {what}") from None
    if kind is None:
        raise UsageError(f"{shown} does not exist; expected a {what}")
    if kind != "folder":
        raise UsageError(f"{shown}: is {_article(kind)} {kind}, not a folder; expected a {what}")
    return path


def existing_file(path: str | Path, label: str, what: str = "file") -> Path:
    """An input file that exists and is a regular file (not a folder, FIFO or device)."""
    path = Path(path).expanduser()
    shown = f"{label} {path}" if label else str(path)
    try:
        kind = _kind(path)
    except OSError as err:
        raise UsageError(f"{shown}: cannot be read ({err.strerror or err}); expected {_article(what)} {what}") from None
    if kind is None:
        raise UsageError(f"{shown} does not exist; expected {_article(what)} {what}")
    if kind != "file":
        raise UsageError(f"{shown}: is {_article(kind)} {kind}, not a regular file; expected {_article(what)} {what}")
    if path.stat().st_size == 0:
        raise UsageError(f"{shown}: is empty (0 bytes); expected {_article(what)} {what}")
    return path
