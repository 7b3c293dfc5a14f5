"""Compaction: a table's many small files (one per unit commit) rewritten into few large ones, then old files
vacuumed - safe while sweeps commit and readers read.

`optimize.compact()` is one Delta commit that adds the large files and marks the small ones removed; a reader holding
an older version still reads the small files, which stay on disk until `vacuum` deletes files removed longer ago than
the retention (the table's `delta.deletedFileRetentionDuration`, 7 days by default; shorter is refused), so neither
a running query nor time travel within that window ever loses a file. Two compactions at once, or one racing a
unit's commit, never both commit: compactions of a table are serialized by a lease (`lease`: delta-rs 1.6 lets two
concurrent optimize commits both succeed, doubling rows), and a compaction racing a unit's commit conflicts in the
log, the loser recomputing on the new version (`tables.committing`) - no row is lost or doubled. A compactor
paused past its lease (`lease_s`) and resumed after another took over commits nothing: its lease is renewed while
it works and fenced by its token right before the commit (`fence`), and it stops with `LostLease`. A data file that
cannot be read stops the compaction with `DamagedStore`, naming the table, version, file and the units lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.errors import UsageError
from cos_ray.store.fence import check_fence, raise_fence
from cos_ray.store.lease import Lease, lease
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


LEASE_S = 600.0  # a compaction's lease: a killed compactor blocks the table's compactions this long at most


def compact_table(store: Store, table: str, vacuum: bool = True, retention_hours: int | None = None,
                  wait_s: float = 300.0, lease_s: float = LEASE_S) -> Compaction:
    """Compact `table` (optimize, holding its compaction lease for `lease_s`, renewed while it works: waits up to
    `wait_s` for another compaction) and vacuum it with the table's retention (or `retention_hours`, not shorter)."""
    delta = open_table(store, table)
    if delta is None:
        return Compaction(table, 0, 0, None)
    actions = add_actions(delta)
    rows = sum(int(a["num_records"] or 0) for a in actions)
    compacted = None
    if len(actions) > 1:
        with lease(store, f"compact:{table}", wait_s=wait_s, ttl_s=lease_s) as held:
            if not held:
                return Compaction(table, len(actions), rows, None, len(actions), 0, skipped=True)
            raise_fence(store, table, held)
            if committing(lambda: _optimize_fenced(store, table, held), f"compacting {table}"):
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


def _optimize_fenced(store: Store, table: str, held: Lease) -> bool:
    """One optimize of the table's newest version, only while `held` is still the lease's holder and the version
    carries its fence; whether it compacted (False: already one file, compacted by the lease's last holder)."""
    from deltalake.exceptions import CommitFailedError, DeltaError

    from cos_ray.store.damage import damaged_error

    delta = open_table(store, table)
    held.check(f"compacting {table}")
    check_fence(delta, table, held)  # immediately before the commit: a takeover after this version conflicts
    if len(delta.file_uris()) <= 1:
        return False
    try:
        delta.optimize.compact()
    except CommitFailedError:
        raise  # a commit made meanwhile (a unit's, or a newer holder's fence): `committing` checks again
    except (DeltaError, OSError) as err:
        raise damaged_error(store, [table], err) from None
    return True


def compact_store(store: Store, vacuum: bool = True, retention_hours: int | None = None,
                  lease_s: float = LEASE_S) -> list[Compaction]:
    """Compact every table of the store."""
    return [compact_table(store, table, vacuum, retention_hours, lease_s=lease_s) for table in TABLES]
