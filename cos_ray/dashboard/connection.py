"""One DuckDB connection per store for the whole dashboard, locked to the store before any query runs.

The dashboard's own queries and the user's SQL box share it: the store's views are registered, then external access
is turned off (`cos_ray.store.sql_guard.lock_down`), so nothing the app runs can read or write files outside the store. Streamlit runs
each browser session in its own thread, and the views rest on Arrow relations registered on this one connection, so
queries are serialized by a lock rather than spread over cursors.
"""

from __future__ import annotations

import threading

import pyarrow as pa

from cos_ray.store.sql_guard import ReadOnlySQL
from cos_ray.errors import UsageError
from cos_ray.store.location import Store
from cos_ray.store.views import register_views


class MissingStore(UsageError):
    """The dashboard was pointed at a store that does not exist."""


class StoreConnection:
    """The store's views (`sweeps`, `runs`, `steps`, and any other table the store schema knows) behind a lock."""

    def __init__(self, uri: str):
        self.store = Store(uri)
        if not self.store.exists():
            raise MissingStore(f"store {uri!r} does not exist: give the results store of a sweep (--out, the "
                               f"folder `cos-ray submit` wrote; default ./results)")
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        """List the store's files and lock a fresh connection onto them (again after a compaction replaced them)."""
        allowed = [self.store.root] if self.store.is_local else []
        self._box = ReadOnlySQL(lambda connection: register_views(connection, self.store), allowed)
        self.tables = {row[0] for row in self._box.connection.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}

    def _retrying(self, run):
        import duckdb

        with self._lock:
            try:
                return run()
            except duckdb.IOException:  # a compaction deleted a file the views listed: list again, once
                self._box.connection.close()
                self._open()
                return run()

    def query(self, sql: str, params: list | None = None) -> pa.Table:
        """The app's own parameterized queries (trusted SQL, never user text)."""
        return self._retrying(lambda: self._box.connection.sql(sql, params=params or None).to_arrow_table())

    def user_query(self, sql: str, limit: int = 10_000) -> pa.Table:
        """A query typed into the SQL box: SELECT statements only (`RefusedQuery` otherwise)."""
        return self._retrying(lambda: self._box.query(sql, limit=limit))

    def columns(self, table: str) -> set[str]:
        """The columns of a view, empty when the store has no such table."""
        if table not in self.tables:
            return set()
        rows = self.query("SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table])
        return set(rows.column("column_name").to_pylist())

    def count(self, table: str) -> int:
        if table not in self.tables:
            return 0
        return self.query(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py()

    def close(self) -> None:
        with self._lock:
            self._box.connection.close()
