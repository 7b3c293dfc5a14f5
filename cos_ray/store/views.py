"""DuckDB views `sweeps`, `runs`, `steps`, `layers` over the store's Delta tables, each pinned to one version.

Each view scans the data files of the table version current when the view was made (`tables.dataset`): a commit or
a compaction during a query cannot change its answer. Local and remote stores read the same way (DuckDB's httpfs
cannot be fetched here). A table with no commit yet is an empty relation with every core column and its type.
"""

from __future__ import annotations

from cos_ray.store.location import Store
from cos_ray.store.schema import TABLES, to_table
from cos_ray.store.tables import dataset, open_table


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
        else:
            connection.register(relation, dataset(store, delta, views=True))
            versions[table] = delta.version()
        connection.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {relation}")
    return versions
