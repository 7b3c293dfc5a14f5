"""DuckDB views `sweeps`, `runs`, `steps`, `layers` over a store's live files.

Local stores are read by DuckDB's own Parquet reader (`read_parquet([...], union_by_name=true)`: fast, and a column
that the first file lacks does not vanish). Other filesystems are read through pyarrow datasets registered in DuckDB
(DuckDB's httpfs extension cannot be fetched here). Each view is a snapshot of the files listed when it was made:
small files win over compacted rows with the same key, so no row is counted twice, and every core column is present
with its type even in an empty store.
"""

from __future__ import annotations

import pyarrow as pa

from cos_ray.store.location import Store, TableFiles
from cos_ray.store.schema import KEYS, TABLES, to_table


def _literal(paths: list[str]) -> str:
    return "[" + ", ".join("'" + path.replace("'", "''") + "'" for path in paths) + "]"


def _source(connection, store: Store, name: str, paths: list[str]) -> str:
    """SQL reading `paths` (all columns, unified by name)."""
    if store.is_local:
        return f"SELECT * FROM read_parquet({_literal(paths)}, union_by_name = true)"
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(path, filesystem=store.fs) for path in paths]
    dataset = ds.dataset(paths, filesystem=store.fs, format="parquet",
                         schema=pa.unify_schemas(schemas, promote_options="permissive"))
    connection.register(name, dataset)
    return f"SELECT * FROM {name}"


def table_sql(connection, store: Store, table: str, files: TableFiles, parts: dict[str, str] | None = None) -> str:
    """A SELECT over the table's live rows: core columns, then `parts` (default: all small files), then compacted
    rows whose key has no small file. Registers helper relations `_{table}_*` on `connection`."""
    parts = files.parts if parts is None else parts
    key = KEYS[table]
    connection.register(f"_{table}_core", to_table(table, []))
    selects = [f"SELECT * FROM _{table}_core"]
    if parts:
        selects.append(_source(connection, store, f"_{table}_parts", list(parts.values())))
    if files.compacted:
        connection.register(f"_{table}_keys", pa.table({"key": pa.array(list(files.parts), pa.string())}))
        compacted = _source(connection, store, f"_{table}_compact", files.compacted)
        selects.append(f"SELECT * FROM ({compacted}) WHERE {key} NOT IN (SELECT key FROM _{table}_keys)")
    return "\nUNION ALL BY NAME\n".join(selects)


def tables_in(sql: str) -> list[str]:
    """The store tables a query names (a view costs a read of every file's footer: make only those needed)."""
    import re

    named = [table for table in TABLES if re.search(rf"\b{table}\b", sql, re.IGNORECASE)]
    return named or list(TABLES)


def register_views(connection, store: Store, tables=None) -> dict[str, TableFiles]:
    """Create the views (all, or `tables`) on `connection`; returns the files each view reads."""
    listed = {}
    for table in tables or TABLES:
        files = store.list_table(table)
        connection.execute(f"CREATE OR REPLACE VIEW {table} AS {table_sql(connection, store, table, files)}")
        listed[table] = files
    return listed
