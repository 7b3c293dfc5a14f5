"""Compaction: a finished sweep's many small files merged into one file per table (DuckDB over 10,000 tiny files
takes seconds; over one file, milliseconds).

The new file is published atomically and names, in its footer, the compacted files it supersedes; only then are the
small files and the superseded files deleted. A reader at any moment sees each row once: small files win over
compacted rows with the same key, and superseded files are ignored. Run it when no sweep writes to those units (at
the end of a sweep, or `compact_store` on a finished store); a unit rewritten while it runs keeps its small file.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from cos_ray.store.location import SUPERSEDES, Store
from cos_ray.store.schema import KEYS, TABLES
from cos_ray.store.views import table_sql
from cos_ray.store.write import write_parquet


@dataclass(frozen=True)
class Compaction:
    table: str
    files_before: int
    rows: int
    path: str | None  # the new compacted file (None: nothing to do)


def compact_table(store: Store, table: str, keys: set[str] | None = None) -> Compaction:
    """Merge the small files (of `keys` only, if given) and the live compacted files of `table` into one file."""
    import duckdb

    files = store.list_table(table)
    parts = {k: p for k, p in files.parts.items() if keys is None or k in keys}
    before = len(parts) + len(files.compacted)
    if before <= 1 and not files.superseded:
        return Compaction(table, before, 0, None)
    connection = duckdb.connect(":memory:")
    try:
        from cos_ray.store.location import TableFiles

        # Compacted rows whose key has *any* small file are dropped: that small file wins (chosen or not).
        chosen = TableFiles(parts=files.parts, compacted=files.compacted)
        sql = table_sql(connection, store, table, chosen, parts=parts)
        data = connection.sql(f"SELECT * FROM ({sql}) ORDER BY {KEYS[table]}").to_arrow_table()
    finally:
        connection.close()
    superseded = [p.rsplit("/", 1)[-1] for p in files.compacted + files.superseded]
    path = store.path(table, f"compact-{uuid.uuid4().hex}.parquet")
    write_parquet(store, path, data, metadata={SUPERSEDES: json.dumps(superseded).encode()})
    for old in list(parts.values()) + files.compacted + files.superseded:
        try:
            store.fs.delete_file(old)
        except FileNotFoundError:
            pass
    return Compaction(table, before, data.num_rows, path)


def compact_store(store: Store, keys: dict[str, set[str]] | None = None) -> list[Compaction]:
    """Compact every table; `keys` per table limits which small files are merged (e.g. one sweep's unit ids)."""
    return [compact_table(store, table, None if keys is None else keys.get(table)) for table in TABLES]
