"""Submission ids of a sweep's Ray Jobs: `<sweep>-<n>`, because Ray never reuses a submission id.

Ray refuses a submission id that was ever used, even by a job that failed or was stopped, so a sweep cannot have one
fixed id. Each submission of sweep S is `S-<n>`: a submission attaches to S's job that is still pending or running
(submitting the same sweep twice is then safe) and otherwise takes `S-<n+1>`, n the highest number used so far; the new
job resumes through the store. Pure functions over the jobs Ray lists: no Ray import, testable without a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cos_ray.errors import UsageError

ACTIVE = ("PENDING", "RUNNING")
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def sweep_key(name: str) -> str:
    """A sweep name made safe for a submission id (letters, digits, `_ . -`; anything else becomes `-`)."""
    key = _UNSAFE.sub("-", str(name)).strip("-.")
    if not key:
        raise UsageError(f"sweep name {name!r}: expected letters, digits, '_', '.' or '-' (set `name:` in the spec)")
    return key


def submission_id(sweep: str, number: int) -> str:
    return f"{sweep_key(sweep)}-{number}"


def job_number(sweep: str, submission: str | None) -> int | None:
    """n if `submission` is `<sweep>-<n>`, else None (`smoke-2-1` is not a job of `smoke`)."""
    if not submission:
        return None
    match = re.fullmatch(re.escape(sweep_key(sweep)) + r"-(\d+)", submission)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class SweepJob:
    """One Ray Job of a sweep, as the job server lists it."""

    submission_id: str
    number: int
    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED
    info: object = None  # ray.job_submission.JobDetails

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def sweep_jobs(jobs, sweep: str) -> list[SweepJob]:
    """The jobs of `sweep` among `jobs` (JobDetails), oldest first by number."""
    found = []
    for job in jobs:
        number = job_number(sweep, getattr(job, "submission_id", None))
        if number is not None:
            found.append(SweepJob(job.submission_id, number, _status(job), job))
    return sorted(found, key=lambda job: job.number)


def plan_submission(jobs, sweep: str) -> tuple[str, bool]:
    """(submission id, attach): attach to the newest pending/running job of the sweep, else the next number."""
    mine = sweep_jobs(jobs, sweep)
    active = [job for job in mine if job.active]
    if active:
        return active[-1].submission_id, True
    return submission_id(sweep, (mine[-1].number if mine else 0) + 1), False


def latest(jobs, sweep: str) -> SweepJob | None:
    """The job a command about `sweep` acts on: the newest active one, else the newest one."""
    mine = sweep_jobs(jobs, sweep)
    active = [job for job in mine if job.active]
    return (active or mine or [None])[-1]


def _status(job) -> str:
    status = getattr(job, "status", "")
    return str(getattr(status, "value", status))
