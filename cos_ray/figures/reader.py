"""A store read for figures: one DuckDB connection with the store's views, each table pinned to the version it had
when the reader opened (every table of a figure set is read at one moment), with the small interface the dashboard's
own connection has (`query(sql, params)`, `columns(table)`, `tables`), so the same table functions serve both."""

from __future__ import annotations

import pyarrow as pa

from cos_ray.errors import UsageError


class StoreReader:
    def __init__(self, uri: str):
        import duckdb

        from cos_ray.store.location import Store
        from cos_ray.store.views import register_views

        self.store = Store(uri)
        self.uri = uri
        if not self.store.exists() or self.store.is_empty():
            raise UsageError(f"--out {uri}: no results store there (give the folder `cos-ray submit` wrote)")
        self.connection = duckdb.connect(":memory:")
        register_views(self.connection, self.store)
        self.tables = {row[0] for row in self.connection.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        self.log: list[tuple[str, list]] = []  # every query run, with its bound values (a figure's SQL file)

    def query(self, sql: str, params: list | None = None) -> pa.Table:
        self.log.append((sql, list(params or [])))
        return self.connection.sql(sql, params=params or None).to_arrow_table()

    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        return self.query(sql, params).to_pylist()

    def columns(self, table: str) -> set[str]:
        if table not in self.tables:
            return set()
        rows = self.query("SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table])
        return set(rows.column("column_name").to_pylist())

    def count(self, table: str) -> int:
        return self.query(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py() if table in self.tables else 0

    def close(self) -> None:
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def runnable(sql: str, params: list) -> str:
    """`sql` with its bound values written in as literals, so that `cos-ray sql` runs it as the figure did."""
    if not params:
        return sql.strip()
    parts = sql.split("?")
    if len(parts) != len(params) + 1:
        return f"-- bound values: {params!r}\n{sql.strip()}"

    def literal(value) -> str:
        return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(value)

    return "".join(part + (literal(params[i]) if i < len(params) else "") for i, part in enumerate(parts)).strip()


def rows(store_uri: str, sql: str) -> list[dict]:
    """The query's answer over the store at `store_uri`, one dict per row (an empty store is an error)."""
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql

    return run_sql(Store(store_uri), sql, require_results=True, timeout_s=300).to_pylist()
