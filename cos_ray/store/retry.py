"""The one retry policy for reads: a read that raced the removal of a file it had listed runs again.

With Delta tables a query reads the files of one table version. Compaction never deletes files (it only marks them
removed in the log); `vacuum` deletes them once they are older than its retention, so a read fails only when it
holds a version older than that - a dashboard left open for days - or when a file is damaged. The first case is
retried on the newest version; the second is not transient and is reported by `cos_ray.store.damage`.
"""

from __future__ import annotations

import time

ATTEMPTS = 8
VANISHED = ("no such file", "not found", "no files found that match the pattern", "does not exist", "cannot open",
            "could not open", "failed to open")


def vanished(err: BaseException) -> bool:
    """Whether `err` says a file that was listed is gone (retry on a fresh table version)."""
    seen = set()
    while err is not None and id(err) not in seen:  # the message may be on a wrapped cause
        seen.add(id(err))
        if isinstance(err, FileNotFoundError) or any(words in str(err).lower() for words in VANISHED):
            return True
        err = err.__cause__ or err.__context__
    return False


def retrying(read, attempts: int = ATTEMPTS):
    """`read()` (which must open the tables afresh) until it does not fail on a vanished file."""
    for attempt in range(attempts):
        try:
            return read()
        except Exception as err:  # noqa: BLE001 - only vanished files are retried, everything else re-raised
            if attempt == attempts - 1 or not vanished(err):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")
