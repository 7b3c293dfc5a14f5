"""One DuckDB connection per store for the whole dashboard, locked to the store before any query runs.

The dashboard's own queries run on it: the store's views are registered, then external access is turned off
(`cos_ray.store.sql_guard.lock_down`), so nothing the app runs can read or write files outside the store. Streamlit
runs each browser session in its own thread, and the views rest on Arrow relations registered on this one
connection, so these (short, cached) queries are serialized by a lock rather than spread over cursors.

The SQL box does not use it: a user's query can be slow, and behind the shared lock it would stall every viewer's
page. Each browser session gets its own `SessionSQL` - a read-only connection of its own, with a time limit per
query (interrupted cleanly), a memory and thread cap, and a cap on the result's rows and bytes (read in Arrow
batches and cut before it is built whole), from `SQLLimits` (`cos-ray dashboard --sql-timeout/--sql-memory/
--sql-max-bytes`, passed to the app in the environment).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import pyarrow as pa

from cos_ray.store.sql_guard import Fetched, ReadOnlySQL, RefusedQuery, size_bytes
from cos_ray.errors import UsageError
from cos_ray.store.location import Store
from cos_ray.store.views import register_views


class MissingStore(UsageError):
    """The dashboard was pointed at a store that does not exist."""


TIMEOUT_ENV, MEMORY_ENV, MAX_BYTES_ENV = "COS_RAY_SQL_TIMEOUT", "COS_RAY_SQL_MEMORY", "COS_RAY_SQL_MAX_BYTES"
RAISE_WITH = "cos-ray dashboard --sql-timeout SECONDS"


@dataclass(frozen=True)
class SQLLimits:
    """What one SQL-box query may use: seconds before it is interrupted, DuckDB memory and threads, rows shown and
    the bytes of the result (its Arrow buffers; never more than a quarter of the memory limit)."""

    timeout_s: float = 30.0
    memory_limit: str = "2GB"
    threads: int = 2
    rows: int = 10_000
    max_bytes: str = "32MB"

    def __post_init__(self):
        if not self.timeout_s > 0:
            raise UsageError(f"--sql-timeout: expected a number of seconds > 0, got {self.timeout_s}")
        if self.result_bytes < 1:
            raise UsageError(f"--sql-max-bytes: expected a size of at least 1 byte, got {self.max_bytes!r}")

    @property
    def result_bytes(self) -> int:
        """The byte budget of one result: `max_bytes`, at most a quarter of `memory_limit`."""
        return min(size_bytes(self.max_bytes, "--sql-max-bytes"),
                   size_bytes(self.memory_limit, "--sql-memory") // 4)

    @classmethod
    def from_env(cls, env=None) -> "SQLLimits":
        """The limits `cos-ray dashboard` passed down ($COS_RAY_SQL_TIMEOUT, $COS_RAY_SQL_MEMORY), else defaults."""
        env = os.environ if env is None else env
        fields = {}
        if env.get(TIMEOUT_ENV):
            try:
                fields["timeout_s"] = float(env[TIMEOUT_ENV])
            except ValueError:
                raise UsageError(f"{TIMEOUT_ENV}: expected seconds, got {env[TIMEOUT_ENV]!r}") from None
        if env.get(MEMORY_ENV):
            fields["memory_limit"] = env[MEMORY_ENV]
        if env.get(MAX_BYTES_ENV):
            fields["max_bytes"] = env[MAX_BYTES_ENV]
        return cls(**fields)


class SessionSQL:
    """One browser session's SQL box: a read-only connection of its own onto the store's views, so that a slow query
    holds no lock another session waits on; each query is stopped at `limits.timeout_s` (QueryTimeout)."""

    def __init__(self, store: Store, limits: SQLLimits = SQLLimits()):
        self.store, self.limits = store, limits
        self._open()

    def _open(self) -> None:
        allowed = [self.store.root] if self.store.is_local else []
        self._box = ReadOnlySQL(lambda connection: register_views(connection, self.store), allowed,
                                self.limits.memory_limit, self.limits.threads)

    def query(self, sql: str) -> pa.Table:
        """At most `limits.rows` rows of a SELECT (`RefusedQuery` otherwise; `QueryTimeout` past the limit)."""
        return self.fetch(sql).table

    def fetch(self, sql: str) -> Fetched:
        """`query`, and why the result was cut (`Fetched.cut`: past `limits.rows` rows or `limits.result_bytes`)."""
        import duckdb

        def run():
            return self._box.fetch(sql, limit=self.limits.rows, timeout_s=self.limits.timeout_s,
                                   raise_with=RAISE_WITH, max_bytes=self.limits.result_bytes,
                                   memory=f"the SQL box's {self.limits.memory_limit} of memory (cos-ray dashboard "
                                          f"--sql-memory)")

        try:
            return run()
        except RefusedQuery as err:
            if not isinstance(err.__cause__, duckdb.IOException):
                raise
        self.close()  # a compaction deleted a file the views listed: list again, once
        self._open()
        return run()

    def close(self) -> None:
        self._box.connection.close()


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
        from cos_ray.store.retry import vanished

        with self._lock:
            try:
                return run()
            except Exception as err:  # noqa: BLE001 - only a vanished file (wrapped or not) is retried, once
                if not vanished(err):
                    raise
                self._box.connection.close()
                self._open()
                return run()

    def query(self, sql: str, params: list | None = None) -> pa.Table:
        """The app's own parameterized queries (trusted SQL, never user text)."""
        return self._retrying(lambda: self._box.connection.sql(sql, params=params or None).to_arrow_table())

    def user_query(self, sql: str, limit: int = 10_000, timeout_s: float | None = SQLLimits.timeout_s) -> pa.Table:
        """A user's SELECT on the shared connection (`RefusedQuery` otherwise); the SQL box uses `sql_session`."""
        return self._retrying(lambda: self._box.query(sql, limit=limit, timeout_s=timeout_s, raise_with=RAISE_WITH,
                                                      max_bytes=SQLLimits().result_bytes))

    def sql_session(self, limits: SQLLimits | None = None) -> SessionSQL:
        """A connection of its own for one browser session's SQL box."""
        return SessionSQL(self.store, limits or SQLLimits.from_env())

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
