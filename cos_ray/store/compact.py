"""Compaction: a table's many small files (one per unit commit) rewritten into few large ones, then old files
vacuumed - safe while sweeps commit and readers read.

`optimize.compact()` is one Delta commit that adds the large files and marks the small ones removed; a reader holding
an older version still reads the small files, which stay on disk until `vacuum` deletes files removed longer ago than
the retention (the table's `delta.deletedFileRetentionDuration`, 7 days by default; shorter is refused), so neither
a running query nor time travel within that window ever loses a file. Two compactions at once, or one racing a
unit's commit, conflict in the log: the loser recomputes on the new version (`tables.committing`), so no row is lost
or doubled.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.errors import UsageError
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


def compact_table(store: Store, table: str, vacuum: bool = True, retention_hours: int | None = None) -> Compaction:
    """Compact `table` (optimize) and vacuum it with the table's retention (or `retention_hours`, not shorter)."""
    delta = open_table(store, table)
    if delta is None:
        return Compaction(table, 0, 0, None)
    actions = add_actions(delta)
    rows = sum(int(a["num_records"] or 0) for a in actions)
    compacted = None
    if len(actions) > 1:
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
