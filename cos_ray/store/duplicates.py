"""Duplicated keys: rows that break "each row key exactly once", counted and repaired to one row per key.

Commits never add a second row for a key (every commit merges on it), but a fault can: two compactions that both
committed (before compactions were fenced by their lease) re-added every row of the table, and any other writer
of a Delta table can append what it likes. `duplicate_keys` counts them (`cos-ray store check` reports them as
damage); `keep_one_per_key` rewrites the rows of the affected keys in one conflict-checked commit, keeping for each
key the copy in the data file added last (the newest commit's; the copies a double compaction makes are
identical).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from cos_ray.store.location import Store
from cos_ray.store.schema import TABLE_SPECS
from cos_ray.store.tables import committing, dataset, fs_path, open_table, quote


@dataclass(frozen=True)
class Duplicates:
    table: str
    version: int
    key: tuple[str, ...]
    keys: int  # keys held by more than one row
    rows: int  # rows holding those keys


def _by_age(delta) -> list[str]:
    """The table version's data file URIs, oldest added first (by the add action's modification time)."""
    actions = pa.table(delta.get_add_actions(flatten=True)).to_pylist()
    root = delta.table_uri.rstrip("/")
    ordered = sorted(actions, key=lambda a: (a["modification_time"] or 0, a["path"]))
    return [f"{root}/{a['path']}" for a in ordered]


def duplicate_keys(store: Store, table: str) -> Duplicates | None:
    """The table's keys held by more than one row (None: each key once, or no table)."""
    import duckdb

    delta = open_table(store, table)
    if delta is None:
        return None
    key = TABLE_SPECS[table].key
    rows = dataset(store, delta).to_table(columns=list(key))
    connection = duckdb.connect(":memory:")
    try:
        connection.register("keyed", rows)
        columns = ", ".join(f'"{column}"' for column in key)
        keys, copies = connection.execute(
            f"SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM keyed GROUP BY {columns} "
            f"HAVING count(*) > 1)").fetchone()
    finally:
        connection.close()
    return Duplicates(table, delta.version(), key, int(keys), int(copies)) if keys else None


def keep_one_per_key(store: Store, table: str) -> str:
    """Rewrite the rows of the table's duplicated keys (every row sharing their first key column) in one commit,
    one row per key: the copy in the newest data file. Returns what was done, one line."""
    outcome = committing(lambda: _rewrite(store, table), f"keeping one row per key of {table}")
    if outcome is None:
        return f"{table}: no duplicated key left"
    keys, removed = outcome
    return (f"{table}: {keys} duplicated key(s) now hold one row each - the copy in the data file added last "
            f"(the newest commit's) - {removed} extra row(s) removed")


def _rewrite(store: Store, table: str) -> tuple[int, int] | None:
    """One attempt (the newest version): (keys repaired, rows removed), None when no key is duplicated."""
    import duckdb
    import pyarrow.compute as pc
    from deltalake import write_deltalake

    delta = open_table(store, table)
    if delta is None:
        return None
    key = TABLE_SPECS[table].key
    columns = ", ".join(f'"{column}"' for column in key)
    source = dataset(store, delta)
    connection = duckdb.connect(":memory:")
    try:
        connection.register("keyed", source.to_table(columns=list(key)))
        duplicated = f"SELECT {columns} FROM keyed GROUP BY {columns} HAVING count(*) > 1"
        keys = connection.execute(f"SELECT count(*) FROM ({duplicated})").fetchone()[0]
        first = [row[0] for row in connection.execute(f'SELECT DISTINCT "{key[0]}" FROM ({duplicated})').fetchall()]
    finally:
        connection.close()
    if not keys:
        return None
    values = pa.array(first, source.schema.field(key[0]).type)
    rank = {fs_path(uri): index for index, uri in enumerate(_by_age(delta))}
    parts = []
    for fragment in source.get_fragments():
        part = fragment.to_table(schema=source.schema)
        part = part.filter(pc.is_in(part.column(key[0]), value_set=values))  # after reading: see tables.dataset
        if part.num_rows:
            parts.append(part.append_column("_file_rank", pa.array([rank.get(fragment.path, -1)] * part.num_rows,
                                                                   pa.int64())))
    rows = pa.concat_tables(parts)
    rows = rows.append_column("_row", pa.array(range(rows.num_rows), pa.int64()))
    connection = duckdb.connect(":memory:")
    try:
        connection.register("candidates", rows.select([*key, "_file_rank", "_row"]))
        keep = [row[0] for row in connection.execute(
            f"SELECT _row FROM (SELECT _row, row_number() OVER (PARTITION BY {columns} ORDER BY _file_rank DESC, "
            f"_row DESC) AS copy FROM candidates) WHERE copy = 1 ORDER BY _row").fetchall()]
    finally:
        connection.close()
    kept = rows.take(pa.array(keep, pa.int64())).drop_columns(["_file_rank", "_row"])
    literals = ", ".join(quote(value) if isinstance(value, str) else str(value) for value in first)
    write_deltalake(delta, kept, mode="overwrite", predicate=f"{key[0]} IN ({literals})")  # one commit
    return int(keys), rows.num_rows - len(keep)
