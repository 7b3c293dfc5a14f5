"""`cos-ray submit SPEC`: run a sweep here on an embedded Ray cluster, or as a Ray Job on a cluster (`--address`).

Without an address (and without RAY_ADDRESS) the sweep runs in this process on a fresh local Ray cluster. With one,
the spec and its task folders are shipped as a Ray Job whose driver is `cos-ray submit --local` on the head node
(see `cos_ray.jobs.submit`). Either way a resubmission skips finished units, so submitting again is always safe.
"""

from __future__ import annotations

import os
import signal
import sys

import click

from cos_ray.cli.errors import reports_errors



@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", help="Results store (path or URI); default: the spec's `out`, else ./results.")
@click.option("--address", help="A cluster's job server (http://HEAD:8265) to submit to as a Ray Job "
                                "(default: $RAY_ADDRESS; neither: run here on an embedded cluster).")
@click.option("--no-wait", is_flag=True, help="With an address: return once submitted, without following the logs.")
@click.option("--dry-run", is_flag=True, help="Print the units it would run and the compute, and run nothing.")
@click.option("--retries", type=int, default=2, show_default=True,
              help="Reruns of a unit whose worker died or stalled (deterministic failures are not retried).")
@click.option("--no-progress", is_flag=True, help="No progress bar or lines.")
@click.option("--local", is_flag=True, hidden=True, help="Run here even if RAY_ADDRESS is set (a job's own driver).")
@click.option("--max-runs", type=int, help="Refuse a spec of more runs than this (counted before anything is "
                                           "expanded).  [default: 1,000,000]")
@click.option("--no-fork", is_flag=True, help="Run every unit from noise, even those sharing a prefix of their "
                                              "trajectory with others (for comparison: same rows, more passes).")
@reports_errors
def submit(spec_path, out, address, no_wait, dry_run, retries, no_progress, local, max_runs, no_fork):
    """Run the sweep SPEC: its units not yet in the store, with live progress; Ctrl-C leaves a resumable store."""
    if dry_run:
        from cos_ray.cli.specs import dry_run as describe

        click.echo(describe(spec_path, out, max_runs=max_runs))
        return
    from cos_ray.cli.specs import limits_for

    limits = limits_for(max_runs)
    address = None if local else (address or os.environ.get("RAY_ADDRESS"))
    if out and not address:  # a file as --out is refused before the spec is read (the spec's own `out`: run_sweep)
        from cos_ray.store.disk_full import check_store_target
        from cos_ray.store.location import Store

        check_store_target(Store(out))
    from cos_ray.spec.plan import refuse_unfit

    refuse_unfit(spec_path, limits)  # a layout that cannot fit its GPUs is refused before anything is submitted
    if address:
        from cos_ray.jobs.submit import submit_and_follow

        extra = ["--retries", retries, *(["--max-runs", max_runs] if max_runs else []),
                 *(["--no-fork"] if no_fork else [])]
        sys.exit(submit_and_follow(address, spec_path, out, wait=not no_wait, extra_args=extra))
    from cos_ray.sweep.runner import EXIT_INTERRUPTED, request_stop, run_sweep

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)  # `ray job stop` and schedulers send SIGTERM: stop as on Ctrl-C
    try:
        report = run_sweep(spec_path, out, retries=retries, progress=not no_progress, limits=limits,
                           fork=not no_fork)
    except KeyboardInterrupt:
        click.echo("interrupted: finished units are in the store; submit again to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(f"sweep {report.sweep_id}: {report.units} unit(s): {report.skipped} already done, {report.done} ran, "
               f"{report.failed} failed -> {report.store}")
    if report.failed:
        click.echo("failed units are retried by submitting again; see: cos-ray sql \"select unit_id, error from runs "
                   "where status = 'failed'\"" + (f" --out {report.store}" if out else ""), err=True)
    sys.exit(report.exit_code)


@click.command()
@click.argument("sweep")
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--sample", type=int, default=3, show_default=True, help="Finished units rerun, drawn at random.")
@click.option("--unit", "unit_ids", multiple=True, help="Rerun this unit (repeatable) instead of a sample.")
@click.option("--spec", "spec_path", help="The spec the sweep ran (default: its path in the sweeps table).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@reports_errors
def verify(sweep, out, sample, unit_ids, spec_path, seed):
    """Rerun a sample of SWEEP's finished units (id or name) and report every stored value that differs.

    Times, durations and worker names aside, a rerun on the same hardware must reproduce every row: exit 0 if it
    does, 1 listing the differences if not. Runs on an embedded Ray cluster, or on $RAY_ADDRESS's.
    """
    from cos_ray.store.location import Store
    from cos_ray.cluster.connect import connect
    from cos_ray.sweep.verify import find_sweep, verify_sweep

    store = Store(out)
    find_sweep(store, sweep)  # input first: no Ray for a store or sweep that is not there, or a spec that cannot be read
    if spec_path:
        from cos_ray.spec.load import load_spec

        load_spec(spec_path)
    connect()
    units, differences = verify_sweep(store, sweep, sample=sample, unit_ids=unit_ids, spec_path=spec_path, seed=seed)
    for difference in differences:
        click.echo(str(difference))
    changed = sorted({difference.unit_id for difference in differences})
    click.echo(f"verified {len(units)} unit(s): " + (f"{len(changed)} differ ({', '.join(changed)})" if changed
                                                       else "every row reproduced"))
    sys.exit(1 if differences else 0)


@click.command(name="export")
@click.argument("sweep")
@click.option("--evalkit", "target", required=True, type=click.Path(file_okay=False),
              help="Folder to lay the videos out in: {method}/seed-{seed}/{split}/{task}/{idx}.mp4.")
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--overwrite", is_flag=True, help="Replace method/seed folders that exist.")
@reports_errors
def export(sweep, target, out, overwrite):
    """Export SWEEP's videos (id or name) for VBVR-EvalKit: one folder per method and seed."""
    from cos_ray.store.location import Store
    from cos_ray.sweep.export import export_sweep

    labels = export_sweep(Store(out), sweep, target, overwrite=overwrite)
    for label, params in labels.items():
        click.echo(f"{label}: params {params}")
    click.echo("score each with: python evaluate.py --videos_path DIR/METHOD/seed-S --gt_path DIR/gt")
