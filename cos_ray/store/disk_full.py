"""A full disk under a sweep's store: one line naming the path, the sweep's row not left "running", nothing partial.

A store's writes (media, Delta data files, log entries) fail with ENOSPC when the disk fills; each is atomic, so the
store stays whole and a resubmission resumes exactly. What was missing is the ending: the OS error surfaced as a
traceback (from pyarrow or from delta-rs, whose message carries "os error 28"), and the sweep's row still said
"running" - the very write that would have said otherwise needs space too. So `ending_on_full_disk` holds a small
reserve file (`.reserve-{host}-{pid}` in the store's root, RESERVE bytes, allocated before the sweep's first write):
when a write fails for want of space it deletes the reserve, records the sweep's end in the space it frees, and
raises `DiskFull` (exit 1: the environment, not the input). A reserve left by a killed process is removed by the next
sweep on the same host. Remote stores (s3://, gs://) have no disk to fill: no reserve.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
from pathlib import Path

from cos_ray.errors import CosRayError

RESERVE = 256 << 10  # bytes held back: a sweeps row's commit (data file + log entry) takes about 10 KB
_NO_SPACE = re.compile(r"No space left on device|Disk quota exceeded|File too large|os error (?:28|122|27)\b")
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # EFBIG: a file-size limit (RLIMIT_FSIZE, quotas)


class DiskFull(CosRayError):
    """A write to the store failed for want of space (exit 1): what to free, and that a resubmission resumes."""


def no_space(err: BaseException) -> str | None:
    """The OS's words when `err` (or an exception it was raised from) is a full disk or a file-size limit; None if
    it is something else. delta-rs raises its own error type with the OS error in its message."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _NO_SPACE_ERRNOS:
            return os.strerror(err.errno)
        found = _NO_SPACE.search(str(err))
        if found:
            return {"os error 28": "No space left on device", "os error 122": "Disk quota exceeded",
                    "os error 27": "File too large"}.get(found.group(0), found.group(0))
        err = err.__cause__ or err.__context__
    return None


def _written_path(err: BaseException, store) -> str:
    filename = getattr(err, "filename", None)
    return str(filename) if filename else store.uri


def check_store_target(store, flag: str = "--out") -> None:
    """Refuse a local store path that cannot be a folder - a file, a FIFO, a symlink loop, a file among its parents
    - before anything is written (UsageError naming it and what was expected)."""
    if store.is_local:
        from cos_ray.path_checks import folder_or_nothing

        folder_or_nothing(store.uri, flag, "store folder")


class Reserve:
    """A file of up to RESERVE bytes in the store's root, given back when a write finds the disk full."""

    def __init__(self, store):
        self.path: Path | None = None
        if not store.is_local:
            return
        root = Path(store.root)
        self._remove_abandoned(root)
        path = root / f".reserve-{socket.gethostname()}-{os.getpid()}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            return  # no room even for that: the sweep's first write will say so
        try:
            for size in (RESERVE, RESERVE // 4, RESERVE // 16):  # what fits
                try:
                    os.posix_fallocate(descriptor, 0, size)
                    self.path = path
                    break
                except OSError:
                    continue
        finally:
            os.close(descriptor)
        if self.path is None:
            path.unlink(missing_ok=True)

    @staticmethod
    def _remove_abandoned(root: Path) -> None:
        """Reserves of processes on this host that are gone (killed before they could remove theirs)."""
        prefix = f".reserve-{socket.gethostname()}-"
        with contextlib.suppress(OSError):
            for path in root.glob(prefix + "*"):
                pid = path.name[len(prefix):]
                if pid.isdigit() and not _alive(int(pid)):
                    path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def ending_on_full_disk(store, record_end, flag: str = "--out"):
    """Run a sweep's writes; when one fails for want of space, free the reserve, `record_end()` (writes the sweep's
    row as ended) and raise DiskFull naming the path. The store's path is checked before anything is written."""
    check_store_target(store, flag)
    reserve = Reserve(store)
    try:
        yield
    except Exception as err:
        reason = no_space(err)
        if reason is None:
            raise
        reserve.release()
        try:
            record_end()
            ended = "its row in the sweeps table says interrupted"
        except Exception as again:  # noqa: BLE001 - still no room: say so instead of a second traceback
            if no_space(again) is None:
                raise
            ended = "even its end could not be recorded (its row may still say running)"
        raise DiskFull(f"disk full writing {_written_path(err, store)} ({reason}): the sweep stopped; {ended}. "
                       f"Finished units are in the store: free space and submit again to resume") from None
    finally:
        reserve.release()
