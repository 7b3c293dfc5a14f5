"""Opening and creating the store's Delta tables (delta-rs), and the one policy for commits that lose a race.

delta-rs commits optimistically: a commit that conflicts with one made meanwhile (another driver's merge, a
compaction that removed files this one read) fails with `CommitFailedError`, and the whole operation - read the
table's newest version, recompute, commit - is run again (`committing`). delta-rs's runtime does not survive
`fork()`: open tables only in processes that were spawned (Ray workers, subprocesses), never in a forked child.
"""

from __future__ import annotations

import random
import time

import pyarrow as pa

from cos_ray.errors import UsageError
from cos_ray.store.location import Store
from cos_ray.store.schema import TABLES

COMMIT_ATTEMPTS = 40


class LegacyStore(UsageError):
    """A store written before the Delta tables: it must be converted once (`cos-ray store migrate`)."""


def open_table(store: Store, table: str, version: int | None = None):
    """The table's `DeltaTable` at its newest version (or `version`); None when it has had no commit yet.

    An unreadable log raises `DamagedStore` naming the table, the version and the file."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    if not store.has_table(table):
        if store.is_legacy(table):
            raise LegacyStore(f"store {store.uri}: table {table} is in the pre-Delta format (Parquet parts); "
                              f"convert it once with `cos-ray store migrate --out {store.uri}`")
        return None
    try:
        return DeltaTable(store.table_uri(table), version=version, storage_options=store.storage_options)
    except TableNotFoundError:
        return None
    except (DeltaError, OSError, ValueError) as err:
        from cos_ray.store.damage import damaged_error

        raise damaged_error(store, [table], err) from None


def ensure_table(store: Store, table: str, schema: pa.Schema | None = None):
    """The table, created empty with its core schema if it has none yet.

    Two creators at once would both commit a CREATE (delta-rs 1.6: the second lands as version 1 and resets the
    schema), so creation holds the table's creation lease (`lease`)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError, DeltaError

    from cos_ray.store.lease import lease

    existing = open_table(store, table)
    if existing is not None:
        return existing
    with lease(store, f"create:{table}", wait_s=60, ttl_s=60):  # delta-rs lets two creates both commit
        if not store.has_table(table):
            try:
                DeltaTable.create(store.table_uri(table), schema=schema or TABLES[table], mode="ignore",
                                  storage_options=store.storage_options)
            except (CommitFailedError, DeltaError):
                pass  # another process created it at the same moment
    opened = open_table(store, table)
    if opened is None:
        raise UsageError(f"store {store.uri}: could not create table {table}")
    return opened


def committing(operation, what: str):
    """Run `operation()` (which opens the table afresh) until its commit does not conflict with another one."""
    from deltalake.exceptions import CommitFailedError

    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return operation()
        except CommitFailedError as err:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise UsageError(f"{what}: {COMMIT_ATTEMPTS} commits in a row conflicted with other writers "
                                 f"({str(err).splitlines()[0]})") from None
            time.sleep(min(1.0, 0.02 * (attempt + 1)) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def dataset(store: Store, delta, unit_id: str | None = None, views: bool = False):
    """A pyarrow dataset of the table version's data files (of the files that may hold `unit_id`'s rows, by the
    log's statistics, if given).

    Built from the log's file list and schema: delta-rs's own `to_pyarrow_dataset()` costs ~3 ms per file (2 s for
    600 files), this ~4 ms in all. Tables that need a Delta reader feature (deletion vectors, column mapping) or
    are partitioned go through `to_pyarrow_dataset()`. `views`: string columns typed string_view, for DuckDB (its
    filters pushed into the scan then work whichever string type a file holds); filter other datasets after
    reading, never in the scan."""
    import pyarrow.dataset as ds

    if not plain(delta):
        return delta.to_pyarrow_dataset()
    schema = pa.schema(delta.schema().to_arrow())
    if views:  # files written by delta-rs's `update` hold string_view columns, others string: pyarrow cannot filter
        # a string_view column against a string literal, so DuckDB's pushed-down filters see every string as a view
        schema = pa.schema([f.with_type(pa.string_view()) if pa.types.is_string(f.type) else f for f in schema])
    if unit_id is None:
        uris = delta.file_uris()
    else:
        root = delta.table_uri.rstrip("/")
        uris = [f"{root}/{path}" for path in files_holding(delta, "unit_id", unit_id)]
    return ds.dataset([fs_path(uri) for uri in uris], format="parquet", filesystem=store.fs, schema=schema)


def plain(delta) -> bool:
    """Whether the table's data files can be read as plain Parquet (no deletion vectors, column mapping or
    partition columns: nothing that needs a Delta reader)."""
    return delta.protocol().min_reader_version <= 1 and not delta.metadata().partition_columns


def fs_path(uri: str) -> str:
    """A data file's URI as a path on the store's pyarrow filesystem (no scheme)."""
    from urllib.parse import unquote

    return unquote(uri.split("://", 1)[1]) if "://" in uri else uri


def files_holding(delta, column: str, value: str) -> list[str]:
    """The table-relative paths of the data files whose min/max statistics of `column` admit `value` (every file
    without statistics). Computed in Arrow: a table of 10^4 files answers in milliseconds."""
    import pyarrow.compute as pc

    actions = pa.table(delta.get_add_actions(flatten=True))
    if f"min.{column}" not in actions.column_names or f"max.{column}" not in actions.column_names:
        return actions.column("path").to_pylist()
    low, high = actions.column(f"min.{column}"), actions.column(f"max.{column}")
    admits = pc.and_(pc.less_equal(low, value), pc.greater_equal(high, value))
    keep = pc.or_(pc.fill_null(admits, True), pc.or_(pc.is_null(low), pc.is_null(high)))
    return actions.filter(keep).column("path").to_pylist()


def add_actions(delta) -> list[dict]:
    """The table version's data files: path (relative), num_records, and min/max statistics of each column."""
    return pa.table(delta.get_add_actions(flatten=True)).to_pylist()


def quote(value: str) -> str:
    """A SQL string literal (for delta-rs predicates)."""
    return "'" + str(value).replace("'", "''") + "'"
