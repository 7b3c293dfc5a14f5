"""`cos-ray sql`, `cos-ray compact`: the results store. No model, no torch."""

from __future__ import annotations

import click

from cos_ray.cli.errors import reports_errors


@click.command()
@click.argument("query")
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@reports_errors
def sql(query, out, fmt):
    """Run a SELECT over the store's views `sweeps`, `runs` and `steps` (DuckDB SQL)."""
    from cos_ray.store.location import Store
    from cos_ray.store.query import format_table, run_sql

    text = format_table(run_sql(Store(out), query, require_results=True), fmt)
    click.echo(text, nl=not text.endswith("\n"))


@click.command()
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@reports_errors
def compact(out):
    """Merge the store's small files into one file per table (do it when no sweep is writing)."""
    from cos_ray.errors import UsageError
    from cos_ray.store.compact import compact_store
    from cos_ray.store.location import Store

    store = Store(out)
    if not store.exists():
        raise UsageError(f"store {out}: no such store")
    for result in compact_store(store):
        if result.path is None:
            click.echo(f"{result.table}: {result.files_before} file(s), nothing to compact")
        else:
            click.echo(f"{result.table}: {result.files_before} file(s) -> 1 ({result.rows} rows)")
