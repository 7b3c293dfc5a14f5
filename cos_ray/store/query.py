"""Run a SQL query over a store, robust to concurrent writers and compactions; format the answer.

A view lists the files present when it was made. Writers only add whole files (atomic renames), so a query can fail
only when a compaction deletes a file it listed: then the views are rebuilt and the query runs again.
"""

from __future__ import annotations

import io
import json
import time

import pyarrow as pa

from cos_ray.errors import UsageError
from cos_ray.store.location import Store
from cos_ray.store.views import register_views, tables_in

FORMATS = ("table", "csv", "json")
RETRIES = 8


class EmptyStore(UsageError):
    """The store holds no results: most often a wrong `--out`."""


def _vanished(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, FileNotFoundError) or any(
        words in text for words in ("no such file", "not found", "does not exist", "cannot open", "could not open"))


def run_sql(store: Store, sql: str, select_only: bool = True, require_results: bool = False) -> pa.Table:
    """The query's answer as a pyarrow Table. `select_only` refuses statements that could write (COPY, CREATE, ...)."""
    import duckdb

    if require_results and store.is_empty():
        raise EmptyStore(f"store {store.uri} is empty: no sweep has written results there yet (check --out; the "
                         f"default is ./results)")
    for attempt in range(RETRIES):
        connection = duckdb.connect(":memory:")
        try:
            register_views(connection, store, tables_in(sql))
            if select_only:
                from cos_ray.store.sql_guard import check_select_only

                check_select_only(connection, sql)
            return connection.sql(sql).to_arrow_table()
        except (duckdb.IOException, duckdb.InvalidInputException, FileNotFoundError, OSError) as err:
            if attempt == RETRIES - 1 or not _vanished(err):
                raise UsageError(f"query failed: {err}") from None
            time.sleep(0.05 * (attempt + 1))  # a compaction replaced files: list them again
        except duckdb.Error as err:
            raise UsageError(f"query failed: {err}") from None
        finally:
            connection.close()
    raise AssertionError("unreachable")


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
