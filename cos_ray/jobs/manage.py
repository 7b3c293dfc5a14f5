"""Look after sweeps on a cluster: list their jobs, show a sweep's status, print or follow its logs, stop it.

A sweep is named by its name (`smoke`: its newest pending/running job, else its newest job) or by one job's
submission id (`smoke-2`). Ray's job server is the only state: nothing is kept on the client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cos_ray.jobs.submit import METADATA_OUT, METADATA_SWEEP
from cos_ray.jobs.client import JobTimeouts, bounded
from cos_ray.jobs.follow import wait
from cos_ray.jobs.ids import TERMINAL, SweepJob, job_number, latest, sweep_jobs
from cos_ray.errors import UsageError


@dataclass(frozen=True)
class JobRow:
    """One sweep job as the commands print it."""

    submission_id: str
    sweep: str
    status: str
    start: str
    end: str
    out: str
    message: str


def row(job) -> JobRow:
    """A JobDetails as a printable row."""
    meta = job.metadata or {}
    message = (job.message or "").strip().splitlines()
    return JobRow(job.submission_id, meta.get(METADATA_SWEEP, ""), _value(job.status), _time(job.start_time),
                  _time(job.end_time), meta.get(METADATA_OUT, ""), message[0] if message else "")


def list_jobs(client, timeouts: JobTimeouts = JobTimeouts(), address: str | None = None) -> list:
    """Every job the cluster knows (JobDetails), oldest first."""
    jobs = bounded(client.list_jobs, timeout=timeouts.request, what="listing jobs", address=address)
    return sorted(jobs, key=lambda job: (job.start_time or 0, job.submission_id or ""))


def sweep_rows(jobs, sweep: str | None = None) -> list[JobRow]:
    """The jobs submitted by cos-ray (all sweeps, or one), oldest first."""
    mine = [job for job in jobs if (job.metadata or {}).get(METADATA_SWEEP)]
    if sweep is not None:
        mine = [sj.info for sj in sweep_jobs(jobs, sweep)]
    return [row(job) for job in mine]


def latest_rows(jobs) -> list[JobRow]:
    """One row per sweep: the job `cos-ray status SWEEP` would show."""
    sweeps = dict.fromkeys((job.metadata or {}).get(METADATA_SWEEP) for job in jobs)
    found = [latest(jobs, sweep) for sweep in sweeps if sweep]
    return [row(job.info) for job in found if job is not None]


def find_job(jobs, name: str) -> SweepJob:
    """The job `name` means: a submission id as given, else the sweep's newest active job, else its newest job."""
    for job in jobs:
        if job.submission_id == name:
            sweep = (job.metadata or {}).get(METADATA_SWEEP) or name
            return SweepJob(name, job_number(sweep, name) or 0, _value(job.status), job)
    found = latest(jobs, name)
    if found is None:
        raise UsageError(f"no job of sweep {name!r} on this cluster (`cos-ray list` shows the sweeps it knows)")
    return found


def logs(client, submission_id: str, timeouts: JobTimeouts = JobTimeouts(), address: str | None = None) -> str:
    """The job's whole log so far."""
    return bounded(client.get_job_logs, submission_id, timeout=timeouts.request,
                   what=f"logs of job {submission_id}", address=address) or ""


def stop(client, job: SweepJob, wait_stopped: bool = True, timeouts: JobTimeouts = JobTimeouts(),
         address: str | None = None, stop_timeout: float = 120.0) -> str:
    """Ask Ray to stop the job (SIGTERM to its driver, then SIGKILL); return its status once it ended (or now)."""
    if job.status in TERMINAL:
        return job.status
    bounded(client.stop_job, job.submission_id, timeout=timeouts.request, what=f"stopping job {job.submission_id}",
            address=address)
    if not wait_stopped:
        return "STOPPING"
    limits = JobTimeouts(request=timeouts.request, pending=stop_timeout, follow=stop_timeout)
    return wait(client, job.submission_id, limits, poll=0.5, address=address)


def _value(status) -> str:
    return str(getattr(status, "value", status))


def _time(millis) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(millis / 1000)) if millis else "-"
