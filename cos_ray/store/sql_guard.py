"""A SQL box that runs SELECT statements only, over a connection that cannot reach files outside the store.

Two locks, because neither is enough alone: DuckDB's `allowed_directories` + `enable_external_access = false` (then
`lock_configuration`) stop reads of other paths, ATTACH and INSTALL; but `COPY ... TO` into the store itself still
succeeds, and CREATE works in memory - so every statement is also parsed and refused unless it is a SELECT.

A SELECT can still be expensive (`SELECT count(*) FROM range(10^12)`): `run_limited` stops it after a time limit
(a timer calls `connection.interrupt()`, which DuckDB checks between vectors), and `ReadOnlySQL` caps the
connection's memory and threads before the configuration is locked, so one query cannot take the machine.
"""

from __future__ import annotations

import threading
from typing import Callable

from cos_ray.errors import UsageError


class RefusedQuery(UsageError):
    """A query the read-only SQL box will not run."""


class QueryTimeout(RefusedQuery):
    """A query stopped at its time limit."""


def run_limited(connection, run: Callable[[], object], timeout_s: float | None, raise_with: str = "--timeout"):
    """`run()` (a query on `connection`), interrupted after `timeout_s` seconds (None: no limit) -> QueryTimeout
    saying the limit and how to raise it."""
    import duckdb

    if timeout_s is None:
        return run()
    done = threading.Event()
    fired = threading.Event()

    def stop() -> None:
        if not done.is_set():  # never interrupt a later query of the same connection
            fired.set()
            connection.interrupt()

    timer = threading.Timer(timeout_s, stop)
    timer.daemon = True
    timer.start()
    try:
        return run()
    except duckdb.InterruptException:
        if fired.is_set():
            raise QueryTimeout(f"the query ran past the time limit of {timeout_s:g} s and was stopped; raise the "
                               f"limit with {raise_with}, or narrow the query (WHERE, LIMIT)") from None
        raise
    finally:
        done.set()
        timer.cancel()


def lock_down(connection, allowed_directories: list[str]) -> None:
    """Call after the store's views are registered: from here on only files under `allowed_directories` are read."""
    connection.execute("SET allowed_directories = ?", [list(allowed_directories)])
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


def limit_resources(connection, memory_limit: str | None = None, threads: int | None = None) -> None:
    """Cap the connection's memory (`'2GB'`; DuckDB's default is 80% of RAM) and threads; before `lock_down`."""
    import duckdb

    try:
        if memory_limit is not None:
            connection.execute(f"SET memory_limit = '{_size(memory_limit)}'")
        if threads is not None:
            connection.execute(f"SET threads = {int(threads)}")
    except duckdb.Error as err:
        raise UsageError(f"memory limit {memory_limit!r}: expected a size like '2GB' or '512MB' ({err})") from None


def _size(text: str) -> str:
    import re

    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", str(text), re.IGNORECASE):
        raise UsageError(f"memory limit {text!r}: expected a size like '2GB' or '512MB'")
    return str(text).strip()


def check_select_only(connection, sql: str) -> None:
    """Refuse the whole query unless every statement in it is a SELECT."""
    import duckdb

    try:
        statements = connection.extract_statements(sql)
    except duckdb.Error as err:
        raise RefusedQuery(f"could not parse the query: {err}") from err
    if not statements:
        raise RefusedQuery("the query is empty: write one SELECT statement")
    for index, statement in enumerate(statements, start=1):
        if statement.type != duckdb.StatementType.SELECT:
            kind = str(statement.type).rsplit(".", 1)[-1]
            if kind == "LOAD":  # DuckDB files INSTALL under LOAD: name what the user wrote
                kind = (statement.query.split() or ["LOAD"])[0].upper()
            raise RefusedQuery(
                f"statement {index} is {kind}: the SQL box runs SELECT statements only (COPY, ATTACH, INSTALL, "
                f"CREATE, SET and other statements are refused)"
            )


class ReadOnlySQL:
    """Run user SELECTs against the store's views; `register(connection)` creates the views before the lock."""

    def __init__(self, register: Callable[[object], None], allowed_directories: list[str],
                 memory_limit: str | None = None, threads: int | None = None):
        import duckdb

        self.connection = duckdb.connect(":memory:")
        register(self.connection)
        limit_resources(self.connection, memory_limit, threads)
        lock_down(self.connection, allowed_directories)

    def query(self, sql: str, limit: int = 10_000, timeout_s: float | None = None, raise_with: str = "--timeout"):
        """The result as a pyarrow Table (at most `limit` rows), stopped after `timeout_s` seconds (QueryTimeout)."""
        import duckdb

        check_select_only(self.connection, sql)
        try:
            return run_limited(self.connection, lambda: self.connection.sql(sql).limit(limit).to_arrow_table(),
                               timeout_s, raise_with)
        except QueryTimeout:
            raise
        except duckdb.Error as err:
            raise RefusedQuery(f"query failed: {err}") from err
