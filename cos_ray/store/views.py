"""DuckDB views `sweeps`, `runs`, `steps`, `layers` over the store's Delta tables, each pinned to one version.

Each view scans the data files of the table version current when the view was made, as listed by its log: a commit
or a compaction during a query cannot change its answer. Local stores are read by DuckDB's own Parquet reader
(`read_parquet([...], union_by_name = true)`: multi-threaded, 2.6x faster than through pyarrow on 5·10^6 rows),
remote ones through pyarrow datasets (`tables.dataset`; DuckDB's httpfs cannot be fetched here). A table with no commit yet is an empty relation with every core column and its type.
"""

from __future__ import annotations

from cos_ray.store.location import Store
from cos_ray.store.schema import TABLES, to_table
from cos_ray.store.tables import fs_path, dataset, open_table, plain


def tables_in(sql: str) -> list[str]:
    """The store tables a query names (opening a table reads its log: open only those needed)."""
    import re

    named = [table for table in TABLES if re.search(rf"\b{table}\b", sql, re.IGNORECASE)]
    return named or list(TABLES)


def register_views(connection, store: Store, tables=None) -> dict[str, int | None]:
    """Create the views (all, or `tables`) on `connection`; returns the table version each view reads (None: no
    table yet)."""
    versions = {}
    for table in tables or TABLES:
        delta = open_table(store, table)
        relation = f"_{table}_delta"
        if delta is None:
            connection.register(relation, to_table(table, []))
            versions[table] = None
        elif store.is_local and plain(delta):
            connection.register(relation, to_table(table, []))  # every core column, with its type
            paths = [fs_path(uri) for uri in delta.file_uris()]
            versions[table] = delta.version()
            if paths:
                files = "[" + ", ".join("'" + path.replace("'", "''") + "'" for path in paths) + "]"
                relation = (f"(SELECT * FROM {relation} UNION ALL BY NAME "
                            f"SELECT * FROM read_parquet({files}, union_by_name = true))")
        else:
            connection.register(relation, dataset(store, delta, views=True))
            versions[table] = delta.version()
        connection.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {relation}")
    return versions
