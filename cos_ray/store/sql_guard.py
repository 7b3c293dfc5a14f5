"""A SQL box that runs SELECT statements only, over a connection that cannot reach files outside the store.

Two locks, because neither is enough alone: DuckDB's `allowed_directories` + `enable_external_access = false` (then
`lock_configuration`) stop reads of other paths, ATTACH and INSTALL; but `COPY ... TO` into the store itself still
succeeds, and CREATE works in memory - so every statement is also parsed and refused unless it is a SELECT.
"""

from __future__ import annotations

from typing import Callable

from cos_ray.errors import UsageError


class RefusedQuery(UsageError):
    """A query the read-only SQL box will not run."""


def lock_down(connection, allowed_directories: list[str]) -> None:
    """Call after the store's views are registered: from here on only files under `allowed_directories` are read."""
    connection.execute("SET allowed_directories = ?", [list(allowed_directories)])
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


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
            raise RefusedQuery(
                f"statement {index} is {kind}: the SQL box runs SELECT statements only (COPY, ATTACH, INSTALL, "
                f"CREATE, SET and other statements are refused)"
            )


class ReadOnlySQL:
    """Run user SELECTs against the store's views; `register(connection)` creates the views before the lock."""

    def __init__(self, register: Callable[[object], None], allowed_directories: list[str]):
        import duckdb

        self.connection = duckdb.connect(":memory:")
        register(self.connection)
        lock_down(self.connection, allowed_directories)

    def query(self, sql: str, limit: int = 10_000):
        """The result as a pyarrow Table (at most `limit` rows)."""
        import duckdb

        check_select_only(self.connection, sql)
        try:
            return self.connection.sql(sql).limit(limit).to_arrow_table()
        except duckdb.Error as err:
            raise RefusedQuery(f"query failed: {err}") from err
