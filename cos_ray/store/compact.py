"""Compaction: a table's many small files (one per unit commit) rewritten into few large ones, then old files
vacuumed - safe while sweeps commit and readers read.

`optimize.compact()` is one Delta commit that adds the large files and marks the small ones removed; a reader holding
an older version still reads the small files, which stay on disk until `vacuum` deletes files removed longer ago than
the retention (the table's `delta.deletedFileRetentionDuration`, 7 days by default; shorter is refused), so neither
a running query nor time travel within that window ever loses a file. Two compactions at once, or one racing a
unit's commit, never both commit: compactions of a table are serialized by a lease (`lease`: delta-rs 1.6 lets two
concurrent optimize commits both succeed, doubling rows), and a compaction racing a unit's commit conflicts in the
log, the loser recomputing on the new version (`tables.committing`) - no row is lost or doubled.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.errors import UsageError
from cos_ray.store.lease import lease
from cos_ray.store.location import Store
from cos_ray.store.schema import TABLES
from cos_ray.store.tables import add_actions, committing, open_table


@dataclass(frozen=True)
class Compaction:
    table: str
    files_before: int
    rows: int
    path: str | None  # the table compacted (None: nothing to do)
    files_after: int = 0
    vacuumed: int = 0  # files deleted by vacuum (removed from the table longer ago than the retention)
    skipped: bool = False  # another compaction held the table's lease past the wait


def compact_table(store: Store, table: str, vacuum: bool = True, retention_hours: int | None = None,
                  wait_s: float = 300.0) -> Compaction:
    """Compact `table` (optimize, holding its compaction lease: waits up to `wait_s` for another compaction) and
    vacuum it with the table's retention (or `retention_hours`, not shorter)."""
    delta = open_table(store, table)
    if delta is None:
        return Compaction(table, 0, 0, None)
    actions = add_actions(delta)
    rows = sum(int(a["num_records"] or 0) for a in actions)
    compacted = None
    if len(actions) > 1:
        with lease(store, f"compact:{table}", wait_s=wait_s) as held:
            if not held:
                return Compaction(table, len(actions), rows, None, len(actions), 0, skipped=True)
            if len(open_table(store, table).file_uris()) > 1:  # not compacted meanwhile by the lease's last holder
                committing(lambda: open_table(store, table).optimize.compact(), f"compacting {table}")
                compacted = store.table_uri(table)
    vacuumed = 0
    if vacuum:
        try:
            vacuumed = len(open_table(store, table).vacuum(retention_hours=retention_hours, dry_run=False))
        except Exception as err:  # noqa: BLE001 - delta-rs refuses a retention shorter than the table's
            if "retention" in str(err).lower():
                raise UsageError(f"--retain-hours {retention_hours}: shorter than the table's retention "
                                 f"({str(err).splitlines()[0]})") from None
            raise
    after = len(open_table(store, table).file_uris())
    return Compaction(table, len(actions), rows, compacted, after, vacuumed)


def compact_store(store: Store, vacuum: bool = True, retention_hours: int | None = None) -> list[Compaction]:
    """Compact every table of the store."""
    return [compact_table(store, table, vacuum, retention_hours) for table in TABLES]
