"""`cos-ray sql`, `cos-ray compact`, `cos-ray store check|migrate`: the results store. No model, no torch."""

from __future__ import annotations

import click

from cos_ray.cli.errors import reports_errors


@click.command()
@click.argument("query")
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--timeout", type=float, help="Stop the query after this many seconds (default: no limit).")
@reports_errors
def sql(query, out, fmt, timeout):
    """Run a SELECT over the store's views `sweeps`, `runs`, `steps` and `layers` (DuckDB SQL)."""
    from cos_ray.errors import UsageError
    from cos_ray.store.location import Store
    from cos_ray.store.query import format_table, run_sql

    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout: expected seconds > 0, got {timeout:g}")
    text = format_table(run_sql(Store(out), query, require_results=True, timeout_s=timeout), fmt)
    click.echo(text, nl=not text.endswith("\n"))


@click.command()
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--retain-hours", type=click.IntRange(min=0), default=None,
              help="Vacuum files removed longer ago than this (default: the tables' retention, 7 days; shorter "
                   "is refused).")
@click.option("--no-vacuum", is_flag=True, help="Compact only; delete no file.")
@click.option("--lease-s", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True,
              envvar="COS_RAY_COMPACT_LEASE_S", show_envvar=True,
              help="Each table's compaction lease (renewed while compacting): a killed compaction blocks others "
                   "this long at most; one paused past it commits nothing.")
@reports_errors
def compact(out, retain_hours, no_vacuum, lease_s):
    """Compact the store's Delta tables (optimize) and vacuum old files; safe while sweeps write and readers read."""
    from cos_ray.errors import UsageError
    from cos_ray.store.compact import compact_store
    from cos_ray.store.location import Store

    store = _existing(Store(out), UsageError)
    for result in compact_store(store, vacuum=not no_vacuum, retention_hours=retain_hours, lease_s=lease_s):
        vacuumed = f", {result.vacuumed} old file(s) vacuumed" if result.vacuumed else ""
        if result.skipped:
            click.echo(f"{result.table}: another compaction held the table's lease for 5 minutes: skipped")
        elif result.path is None:
            click.echo(f"{result.table}: {result.files_before} file(s), nothing to compact{vacuumed}")
        else:
            click.echo(f"{result.table}: {result.files_before} file(s) -> {result.files_after} ({result.rows} rows)"
                       f"{vacuumed}")


def _existing(store, error):
    if not store.exists():
        raise error(f"store {store.uri}: no such store")
    return store


@click.group("store")
def store_group() -> None:
    """The results store itself: check it for damage, convert a pre-Delta store."""


@store_group.command()
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--repair", is_flag=True, help="Set the damaged files aside (under _damaged/) so the tables read "
                                             "again; the lost units are rerun by the next submission. Duplicated "
                                             "keys: keep one row per key (the copy in the data file added last).")
@reports_errors
def check(out, repair):
    """Read every log entry and data file of every table, count duplicated keys; list each unreadable file and
    what is lost, and each table whose keys are not unique (exit 1)."""
    from cos_ray.errors import UsageError
    from cos_ray.store.damage import check_store, set_aside
    from cos_ray.store.location import Store

    store = _existing(Store(out), UsageError)
    damages = check_store(store)
    for damage in damages:
        click.echo(damage.describe())
    if not damages:
        click.echo(f"store {store.uri}: every log entry and data file reads, each key once")
        return
    if repair:
        for line in set_aside(store, damages):
            click.echo(f"repaired: {line}")
        return
    raise SystemExit(1)


@store_group.command()
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@reports_errors
def migrate(out):
    """Convert a store written before the Delta tables (Parquet parts) into Delta tables, once, in place."""
    from cos_ray.store.location import Store
    from cos_ray.store.migrate import migrate_store

    done = migrate_store(Store(out))
    for result in done:
        click.echo(f"{result.table}: {result.files} legacy file(s) -> Delta table ({result.rows} rows)")
    if not done:
        click.echo(f"store {out}: nothing to migrate (every table is a Delta table)")
