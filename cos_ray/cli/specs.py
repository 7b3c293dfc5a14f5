"""`cos-ray plan`, `cos-ray spec schema|check`, `cos-ray sql`, `cos-ray compact`: specs and the results store.

None of them runs a model: they import neither torch, diffusers nor ray (a test checks `cos-ray --help`), and each
imports what it needs inside its body.
"""

from __future__ import annotations

import json

import click

from cos_ray.cli.errors import reports_errors



MAX_RUNS_HELP = "Refuse a spec of more runs than this (counted before anything is expanded)."


def limits_for(max_runs: int | None):
    """The spec limits with --max-runs applied (cos_ray.spec.limits; the others bound what no real spec nears)."""
    import dataclasses

    from cos_ray.errors import UsageError
    from cos_ray.spec.limits import DEFAULT

    if max_runs is None:
        return DEFAULT
    if max_runs < 1:
        raise UsageError(f"--max-runs: expected an integer >= 1, got {max_runs}")
    return dataclasses.replace(DEFAULT, max_runs=max_runs)


def dry_run(spec_path: str, out: str | None = None, show: int = 20, max_runs: int | None = None,
            gpu: str | None = None, gpus: int | None = None) -> str:
    """Validate a spec and describe what it would run - units, runs, forward passes, compute - running nothing.

    Units already finished in the store (`--out`, else the spec's `out`, else ./results) are counted as skipped.
    """
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.spec.plan import describe_plan
    from cos_ray.store.location import Store
    from cos_ray.store.status import finished_units

    spec = load_spec(spec_path, limits_for(max_runs))
    units = expand(spec)
    from cos_ray.store.disk_full import check_store_target

    store = Store(spec.store_uri(out))
    check_store_target(store)  # what submit would refuse: a file as the store
    done = finished_units(store) if store.exists() else set()
    return f"store: {store.uri}\n" + describe_plan(spec, units, done, show=show, gpu=gpu, gpus=gpus)


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", help="Results store (path or URI); default: the spec's `out`, else ./results.")
@click.option("--show", type=int, default=20, show_default=True, help="Units listed.")
@click.option("--max-runs", type=int, help=MAX_RUNS_HELP + "  [default: 1,000,000]")
@click.option("--gpu", help="A GPU kind (h100-80gb, h200-141gb, a100-80gb, l40s-48gb, a6000-48gb, rtx4090-24gb, "
                            "l4-24gb): print every parallel layout's memory, time and GPU-hours on --gpus of them.")
@click.option("--gpus", type=int, help="How many GPUs of --gpu (a node's, or a whole cluster's).")
@reports_errors
def plan(spec_path, out, show, max_runs, gpu, gpus):
    """Validate SPEC and print the units, runs and model steps it would run, and the compute (a dry run)."""
    click.echo(dry_run(spec_path, out, show, max_runs, gpu, gpus))


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
@click.option("--max-runs", type=int, help=MAX_RUNS_HELP + "  [default: 1,000,000]")
@reports_errors
def check(spec_path, max_runs):
    """Validate SPEC: every problem with its field path, every task sample's files opened; exit code 2 if there is
    any problem. Hostile specs (alias bombs, huge ranges, deep nesting) are refused from counts, in well under 1 s."""
    from cos_ray.spec.expand import iter_units
    from cos_ray.spec.load import load_spec

    loaded = load_spec(spec_path, limits_for(max_runs))
    units = sum(1 for _ in iter_units(loaded))  # streamed: a large sweep is counted, not held
    click.echo(f"{spec_path}: ok ({len(loaded.points)} grid point(s), {units} unit(s))")
