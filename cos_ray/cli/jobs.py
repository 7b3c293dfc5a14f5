"""`cos-ray status`, `cos-ray logs`, `cos-ray stop`, `cos-ray list`: sweeps running as Ray Jobs on a cluster.

In the style of `ray job status|logs|stop|list`, but named by sweep (`smoke`, its newest job) or by submission id
(`smoke-2`). Every command takes `--address` (else RAY_ADDRESS): the head node's dashboard, e.g. http://HEAD:8265.
Importing this module imports neither ray, torch nor diffusers: the commands import the cluster code in their bodies.
"""

from __future__ import annotations

import functools
import sys

import click

from cos_ray.cli.errors import reports_errors

ADDRESS_HELP = "The cluster's job server, e.g. http://HEAD:8265 (default: $RAY_ADDRESS, else http://127.0.0.1:8265)."



def address_option(command):
    return click.option("--address", envvar="RAY_ADDRESS", help=ADDRESS_HELP)(command)


def _client(address):
    from cos_ray.jobs.client import connect

    return connect(address)


def _table(rows, columns) -> str:
    cells = [[str(getattr(row, name)) for name in columns] for row in rows]
    header = [name.upper().replace("_", " ") for name in columns]
    widths = [max(len(text) for text in column) for column in zip(header, *cells)]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
                     for line in [header, *cells])


@click.command(name="list")
@address_option
@reports_errors
def list_(address):
    """List the jobs of every sweep submitted to the cluster, oldest first."""
    from cos_ray.jobs.manage import list_jobs, sweep_rows

    rows = sweep_rows(list_jobs(_client(address), address=address))
    if not rows:
        click.echo("no sweep jobs on this cluster")
        return
    click.echo(_table(rows, ["submission_id", "sweep", "status", "start", "end", "out"]))


@click.command()
@click.argument("sweep", required=False)
@address_option
@reports_errors
def status(sweep, address):
    """Show SWEEP's newest job (or one job by submission id), or the newest job of every sweep."""
    from cos_ray.jobs.manage import find_job, latest_rows, list_jobs, row

    jobs = list_jobs(_client(address), address=address)
    if sweep is None:
        rows = latest_rows(jobs)
        click.echo(_table(rows, ["sweep", "submission_id", "status", "start", "end", "out"]) if rows
                   else "no sweep jobs on this cluster")
        return
    job = row(find_job(jobs, sweep).info)
    for label, value in [("job", job.submission_id), ("sweep", job.sweep or sweep), ("status", job.status),
                         ("start", job.start), ("end", job.end), ("out", job.out or "-"),
                         ("message", job.message or "-")]:
        click.echo(f"{label + ':':9}{value}")


@click.command()
@click.argument("sweep")
@click.option("-f", "--follow", is_flag=True, help="Follow the logs until the job ends.")
@click.option("--timeout", type=float, help="Stop following after this many seconds (the job keeps running).")
@address_option
@reports_errors
def logs(sweep, follow, timeout, address):
    """Print the logs of SWEEP's newest job (or of one job by submission id)."""
    from cos_ray.jobs import manage as jobs_manage
    from cos_ray.jobs.client import JobTimeouts
    from cos_ray.jobs.follow import follow as follow_logs

    client = _client(address)
    job = jobs_manage.find_job(jobs_manage.list_jobs(client, address=address), sweep)
    if not follow:
        click.echo(jobs_manage.logs(client, job.submission_id, address=address), nl=False)
        return
    write = functools.partial(_write, sys.stdout)
    try:
        final = follow_logs(client, job.submission_id, write, JobTimeouts(follow=timeout), address=address)
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; job {job.submission_id} keeps running", err=True)
        sys.exit(130)
    click.echo(f"job {job.submission_id} {final}", err=True)


@click.command()
@click.argument("sweep")
@click.option("--no-wait", is_flag=True, help="Return once the stop is requested, without waiting for the job to end.")
@address_option
@reports_errors
def stop(sweep, no_wait, address):
    """Stop SWEEP's running job (or one job by submission id); resubmitting the sweep resumes it as a new job."""
    from cos_ray.jobs import manage as jobs_manage

    client = _client(address)
    job = jobs_manage.find_job(jobs_manage.list_jobs(client, address=address), sweep)
    if not job.active:
        click.echo(f"job {job.submission_id} is not running ({job.status}): nothing to stop")
        return
    final = jobs_manage.stop(client, job, wait_stopped=not no_wait, address=address)
    click.echo(f"job {job.submission_id} {final}")


def _write(stream, text: str) -> None:
    stream.write(text)
    stream.flush()


COMMANDS = [list_, status, logs, stop]
