"""Run a SQL query over a store, each table pinned to one version, robust to concurrent commits; format the answer.

Views are made afresh for each query (the tables' newest versions); a read that loses a file to a vacuum is retried
(`cos_ray.store.retry`); a read that fails on a damaged file names it (`cos_ray.store.damage`).
"""

from __future__ import annotations

import io
import json

import pyarrow as pa

from cos_ray.errors import CosRayError, UsageError
from cos_ray.store.location import Store
from cos_ray.store.retry import retrying, vanished
from cos_ray.store.views import register_views, tables_in

FORMATS = ("table", "csv", "json")
# Words of DuckDB's and pyarrow's messages for a data file that cannot be read (then the store is checked for damage)
READ_FAILURES = ("parquet", "magic bytes", "thrift", "reading the stream", "ioerror", "corrupt", "decompress",
                 "snappy", "zstd", "page header", "footer")


class EmptyStore(UsageError):
    """The store holds no results: most often a wrong `--out`."""


class _ReadFailed(Exception):
    """A DuckDB error while reading the tables (kept apart from errors in the SQL itself)."""


def run_sql(store: Store, sql: str, select_only: bool = True, require_results: bool = False,
            timeout_s: float | None = None) -> pa.Table:
    """The query's answer as a pyarrow Table. `select_only` refuses statements that could write (COPY, CREATE, ...);
    `timeout_s` stops the query there (`cos_ray.store.sql_guard.QueryTimeout`, saying to raise `--timeout`)."""
    import duckdb

    if require_results and store.is_empty():
        raise EmptyStore(f"store {store.uri} is empty: no sweep has written results there yet (check --out; the "
                         f"default is ./results)")
    tables = tables_in(sql)

    def once() -> pa.Table:
        connection = duckdb.connect(":memory:")
        try:
            try:
                register_views(connection, store, tables)  # binding a view reads the data files' footers
            except (duckdb.IOException, duckdb.InvalidInputException) as err:
                raise _ReadFailed(str(err)) from err
            if select_only:
                from cos_ray.store.sql_guard import check_select_only

                check_select_only(connection, sql)
            try:
                from cos_ray.store.sql_guard import run_limited

                return run_limited(connection, lambda: connection.sql(sql).to_arrow_table(), timeout_s, "--timeout")
            except (duckdb.IOException, duckdb.InvalidInputException) as err:
                if vanished(err) or any(words in str(err).lower() for words in READ_FAILURES):
                    raise _ReadFailed(str(err)) from err
                raise UsageError(f"query failed: {err}") from None
            except duckdb.Error as err:
                raise UsageError(f"query failed: {err}") from None
        finally:
            connection.close()

    try:
        return retrying(once)
    except _ReadFailed as err:
        from cos_ray.store.damage import damaged_error

        raise damaged_error(store, tables, err) from None
    except CosRayError:
        raise


def format_table(table: pa.Table, fmt: str = "table") -> str:
    """`table`: aligned columns; `csv`: with a header; `json`: an array of objects."""
    if fmt == "csv":
        import pyarrow.csv as pacsv

        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        return buffer.getvalue().decode()
    rows = table.to_pylist()
    if fmt == "json":
        return json.dumps(rows, default=str, indent=1)
    if fmt != "table":
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    header = table.column_names
    cells = [[_cell(row[name]) for name in header] for row in rows]
    widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(header)]
    lines = ["  ".join(name.ljust(w) for name, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(value.ljust(w) for value, w in zip(row, widths)) for row in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
