"""A SQL box that runs SELECT statements only, over a connection that cannot reach files outside the store.

Two locks, because neither is enough alone: DuckDB's `allowed_directories` + `enable_external_access = false` (then
`lock_configuration`) stop reads of other paths, ATTACH and INSTALL; but `COPY ... TO` into the store itself still
succeeds, and CREATE works in memory - so every statement is also parsed and refused unless it is a SELECT.

A SELECT can still be expensive (`SELECT count(*) FROM range(10^12)`): `run_limited` stops it after a time limit
(a timer calls `connection.interrupt()`, which DuckDB checks between vectors), and `ReadOnlySQL` caps the
connection's memory and threads before the configuration is locked, so one query cannot take the machine.

A SELECT can also be wide (`SELECT repeat('a', 120000) FROM range(10000)`: 2.4 GB of text in 10,000 rows): a cap on
rows alone let one such query take 8.6 GB. `ReadOnlySQL.fetch` therefore streams the result in Arrow record
batches (DuckDB's record batch reader) and stops at a byte budget as well as the row cap, before the whole result
exists anywhere, saying where it cut. DuckDB's temp folder (`.tmp` under the working directory by default) is
readable by any query once it is an allowed directory, so the box never spills: `temp_directory` is empty, and a
query past the memory cap fails with a message instead.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
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
    except (duckdb.InterruptException, OSError):  # a record batch reader reports the interrupt as an OSError
        if fired.is_set():
            raise QueryTimeout(f"the query ran past the time limit of {timeout_s:g} s and was stopped; raise the "
                               f"limit with {raise_with}, or narrow the query (WHERE, LIMIT)") from None
        raise
    finally:
        done.set()
        timer.cancel()


def lock_down(connection, allowed_directories: list[str]) -> None:
    """Call after the store's views are registered: from here on only files under `allowed_directories` are read,
    and nothing is spilled to (or readable from) DuckDB's temp folder."""
    connection.execute("SET temp_directory = ''")
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


SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)
UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,  # as DuckDB reads them
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _size(text: str, what: str = "memory limit") -> str:
    if not SIZE.fullmatch(str(text)):
        raise UsageError(f"{what} {text!r}: expected a size like '2GB' or '512MB'")
    return str(text).strip()


def size_bytes(text: str, what: str = "memory limit") -> int:
    """'2GB' -> 2,000,000,000 (KB/MB/GB: powers of 1000, KiB/MiB/GiB: of 1024, as DuckDB reads them)."""
    number, unit = SIZE.fullmatch(_size(text, what)).groups()
    return int(float(number) * UNITS[unit.lower()])


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


@dataclass(frozen=True)
class Fetched:
    """A query's first rows, and why the rest is missing (`cut`: None when `table` is the whole result)."""

    table: object  # pyarrow.Table
    cut: str | None = None


def fetch_bounded(relation, rows: int, max_bytes: int | None, batch_rows: int = 256) -> Fetched:
    """At most `rows` rows and `max_bytes` bytes (Arrow buffers) of `relation`, read batch by batch so that a wide
    result stops at the budget instead of being built whole; `cut` names the limit that stopped it."""
    import pyarrow as pa

    reader = relation.limit(rows + 1).to_arrow_reader(batch_rows)  # one more row: is there more than `rows`?
    batches, kept_rows, kept_bytes, cut = [], 0, 0, None
    try:
        schema = reader.schema
        for batch in reader:
            more_rows = kept_rows + batch.num_rows > rows
            if more_rows:
                batch = batch.slice(0, rows - kept_rows)
            if max_bytes is not None and kept_bytes + batch.nbytes > max_bytes:
                batch = _within(batch, max_bytes - kept_bytes)
                cut = (f"the result passed the SQL box's {_shown(max_bytes)} after {kept_rows + batch.num_rows:,} "
                       f"row(s), which are shown: select fewer or narrower columns, or fewer rows (LIMIT)")
            elif more_rows:
                cut = (f"the query returns more than {rows:,} rows: the first {rows:,} are shown (narrow it: WHERE, "
                       f"LIMIT)")
            batches.append(batch)
            kept_rows, kept_bytes = kept_rows + batch.num_rows, kept_bytes + batch.nbytes
            if cut:
                break
    finally:
        reader.close()  # stops the query: nothing past the cut is computed
    return Fetched(pa.Table.from_batches(batches, schema=schema), cut)


def _within(batch, budget: int):
    """The longest head of `batch` whose buffers fit in `budget` bytes (halving: a few slices at most)."""
    keep = batch.num_rows
    while keep and batch.slice(0, keep).nbytes > budget:
        keep //= 2
    return batch.slice(0, keep)


def _shown(size: int) -> str:
    return f"{size / 10**6:,.0f} MB" if size >= 10**6 else f"{size:,} bytes"


class ReadOnlySQL:
    """Run user SELECTs against the store's views; `register(connection)` creates the views before the lock."""

    def __init__(self, register: Callable[[object], None], allowed_directories: list[str],
                 memory_limit: str | None = None, threads: int | None = None):
        import duckdb

        self.connection = duckdb.connect(":memory:")
        register(self.connection)
        limit_resources(self.connection, memory_limit, threads)
        lock_down(self.connection, allowed_directories)

    def query(self, sql: str, limit: int = 10_000, timeout_s: float | None = None, raise_with: str = "--timeout",
              max_bytes: int | None = None):
        """The result as a pyarrow Table (at most `limit` rows and `max_bytes` bytes), stopped after `timeout_s`
        seconds (QueryTimeout)."""
        return self.fetch(sql, limit, timeout_s, raise_with, max_bytes).table

    def fetch(self, sql: str, limit: int = 10_000, timeout_s: float | None = None, raise_with: str = "--timeout",
              max_bytes: int | None = None, memory: str = "the SQL box's memory limit") -> Fetched:
        """`query`, saying where the result was cut (`Fetched.cut`); a query past the memory cap is a RefusedQuery
        naming `memory` (how to raise it)."""
        import duckdb

        check_select_only(self.connection, sql)
        try:
            return run_limited(self.connection, lambda: fetch_bounded(self.connection.sql(sql), limit, max_bytes),
                               timeout_s, raise_with)
        except QueryTimeout:
            raise
        except (duckdb.Error, OSError) as err:  # OSError: DuckDB's errors as the record batch reader passes them on
            if isinstance(err, duckdb.OutOfMemoryException) or "out of memory" in str(err).lower():
                raise RefusedQuery(f"the query needs more than {memory}: narrow it (fewer or narrower columns, "
                                   f"WHERE, LIMIT)") from None
            raise RefusedQuery(f"query failed: {err}") from err
