"""`cos-ray plan`, `cos-ray spec schema|check`, `cos-ray sql`, `cos-ray compact`: specs and the results store.

None of them runs a model: they import neither torch, diffusers nor ray (a test checks `cos-ray --help`), and each
imports what it needs inside its body.
"""

from __future__ import annotations

import functools
import json

import click


def _reports_errors(command):
    """cos_ray.cli's error reporting (one line on stderr, the error's exit code), imported when the command runs."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from cos_ray.cli import reports_errors

        return reports_errors(command)(*args, **kwargs)

    return wrapper


def dry_run(spec_path: str, out: str | None = None, show: int = 20) -> str:
    """Validate a spec and describe what it would run - units, runs, forward passes, compute - running nothing.

    Units already finished in the store (`--out`, else the spec's `out`, else ./results) are counted as skipped.
    """
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.spec.plan import describe_plan
    from cos_ray.store.location import Store
    from cos_ray.store.status import finished_units

    spec = load_spec(spec_path)
    units = expand(spec)
    store = Store(spec.store_uri(out))
    done = finished_units(store) if store.exists() else set()
    return f"store: {store.uri}\n" + describe_plan(spec, units, done, show=show)


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", help="Results store (path or URI); default: the spec's `out`, else ./results.")
@click.option("--show", type=int, default=20, show_default=True, help="Units listed.")
@_reports_errors
def plan(spec_path, out, show):
    """Validate SPEC and print the units, runs and model steps it would run, and the compute (a dry run)."""
    click.echo(dry_run(spec_path, out, show))


@click.group()
def spec() -> None:
    """Sweep specs: check one, or print their JSON Schema."""


@spec.command()
def schema():
    """Print the JSON Schema of a sweep spec (generated from the code)."""
    from cos_ray.spec.schema import spec_schema

    click.echo(json.dumps(spec_schema(), indent=2))


@spec.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@_reports_errors
def check(spec_path):
    """Validate SPEC: every problem with its field path, exit code 2 if there is any."""
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec

    loaded = load_spec(spec_path)
    click.echo(f"{spec_path}: ok ({len(loaded.points)} grid point(s), {len(expand(loaded))} unit(s))")


@click.command()
@click.argument("query")
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@_reports_errors
def sql(query, out, fmt):
    """Run a SELECT over the store's views `sweeps`, `runs` and `steps` (DuckDB SQL)."""
    from cos_ray.store.location import Store
    from cos_ray.store.query import format_table, run_sql

    text = format_table(run_sql(Store(out), query, require_results=True), fmt)
    click.echo(text, nl=not text.endswith("\n"))


@click.command()
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@_reports_errors
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
