"""Sweeps as Ray Jobs: submit a spec to a cluster, attach to its running job, follow it, exit with its result.

A sweep submitted with an address runs as one Ray Job whose driver is `cos-ray submit` itself, run on the head node
by the cluster's own Python (`python -m cos_ray.cli`, so it does not depend on the raylet's PATH entries for
`cos-ray` nor on its working directory: Ray starts the driver in the job's `working_dir`, which holds the spec and its
task folders). Submission ids are `<sweep>-<n>` (see `jobs_ids`): submitting a sweep whose job is pending or running
attaches to that job; otherwise job n+1 starts and resumes through the store, so submitting again is always safe.
Closing the client (Ctrl-C, a lost connection) never stops the job. Stopping it (`cos-ray stop`) sends the driver
SIGTERM and leaves it `STOP_GRACE_S` to kill its workers and mark the sweep interrupted (the job's supervisor reads
`RAY_JOB_STOP_WAIT_TIME_S` from the job's env_vars) before Ray kills it.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from cos_ray.jobs.client import JobTimeouts, bounded, connect, is_duplicate_id, until_served
from cos_ray.jobs.ids import plan_submission, sweep_key
from cos_ray.errors import UsageError

IN_JOB_ARGS = ("--local",)  # tells `cos-ray submit` inside the job to run the sweep, not to submit another job
METADATA_SWEEP = "cos_ray.sweep"
METADATA_OUT = "cos_ray.out"
METADATA_SPEC = "cos_ray.spec"
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 1}
STOP_GRACE_S = 30  # `cos-ray stop`: seconds between Ray's SIGTERM to the driver and its SIGKILL (Ray's default: 3)


def sweep_entrypoint(spec_name: str, out: str, extra_args=(), python: str = "python") -> str:
    """The job's shell command: the cluster's Python runs `cos-ray submit` on the shipped spec, writing to `out`."""
    return shlex.join([python, "-m", "cos_ray.cli", "submit", spec_name, "--out", str(out), *IN_JOB_ARGS,
                       *map(str, extra_args)])


@dataclass(frozen=True)
class Submission:
    """The job a submission went to: a new one, or the sweep's pending/running job it attached to."""

    submission_id: str
    attached: bool
    sweep: str


def submit_sweep(address: str | None, sweep_name: str, entrypoint: str, runtime_env: dict | None = None,
                 metadata: dict | None = None, timeouts: JobTimeouts = JobTimeouts(), client=None,
                 say=None) -> Submission:
    """Attach to the sweep's pending or running job, or submit `<sweep>-<n+1>`; never reuses a submission id. A head
    whose job agent is not up yet is asked again for `timeouts.agent` s (`until_served`; `say` is told)."""
    sweep = sweep_key(sweep_name)
    client = client or connect(address, timeouts)
    for _attempt in range(3):  # another client may take the same next id between our list and our submit
        jobs = bounded(client.list_jobs, timeout=timeouts.request, what="listing jobs", address=address)
        submission_id, attach = plan_submission(jobs, sweep)
        if attach:
            return Submission(submission_id, True, sweep)
        env = dict(runtime_env or {})
        env["env_vars"] = {"RAY_JOB_STOP_WAIT_TIME_S": str(STOP_GRACE_S), **env.get("env_vars", {}),
                           "COS_RAY_SWEEP": sweep, "COS_RAY_SUBMISSION_ID": submission_id}
        what = f"submitting job {submission_id}"
        try:
            until_served(lambda: bounded(client.submit_job, entrypoint=entrypoint, submission_id=submission_id,
                                         runtime_env=env, metadata={METADATA_SWEEP: sweep, **(metadata or {})},
                                         timeout=timeouts.submit, what=f"{what} (uploading its working_dir)",
                                         address=address),
                         bound=timeouts.agent, what=what, address=address, say=say)
        except RuntimeError as err:
            if is_duplicate_id(err):
                continue
            raise
        except ValueError as err:  # Ray refuses a package over its upload limit
            if "exceeds the maximum size" in str(err):
                raise UsageError(f"the job's working_dir is too large to upload: {err}") from err
            raise
        return Submission(submission_id, False, sweep)
    raise UsageError(f"could not find a free submission id for sweep {sweep!r}: other clients keep submitting it")


def exit_code(status: str) -> int:
    """The job's result as an exit code: SUCCEEDED 0, FAILED or STOPPED 1."""
    return EXIT_CODES.get(status, 1)


def next_steps(sweep: str, address: str | None) -> str:
    """The commands to look after a submitted sweep, as printed after submission."""
    flag = f" --address {shlex.quote(address)}" if address else ""
    return (f"  cos-ray status {sweep}{flag}\n"
            f"  cos-ray logs {sweep} -f{flag}\n"
            f"  cos-ray stop {sweep}{flag}")


def submit_and_follow(address: str | None, spec_path: str | Path, out: str | None, sweep_name: str | None = None,
                      wait: bool = True, extra_args=(), *, entrypoint: str | None = None, python: str = "python",
                      timeouts: JobTimeouts = JobTimeouts(), echo=None) -> int:
    """`cos-ray submit SPEC --address URL`: ship the spec, submit or attach, follow the logs; the job's exit code.

    `out` defaults to the spec's `out`; it must be a location every node reaches (UsageError naming --out if not).
    `sweep_name` defaults to the spec's `name`, else the spec file's name. `entrypoint` replaces the job's command
    (tests; otherwise `sweep_entrypoint(spec, out, extra_args)`). With `wait=False` it returns 0 once submitted.
    """
    from cos_ray.jobs.follow import follow
    from cos_ray.jobs.out import check_cluster_out
    from cos_ray.jobs.package import read_raw_spec, staged_working_dir

    say = echo or _echo
    raw = read_raw_spec(spec_path)
    out = out or raw.get("out")
    warning = check_cluster_out(out)
    if warning:
        say(f"warning: {warning}", err=True)
    sweep = sweep_key(sweep_name or raw.get("name") or Path(spec_path).stem)
    with staged_working_dir(spec_path) as package:
        command = entrypoint or sweep_entrypoint(package.spec_name, out, extra_args, python=python)
        meta = {METADATA_OUT: str(out), METADATA_SPEC: package.spec_name}
        client = connect(address, timeouts)
        job = submit_sweep(address, sweep, command, {"working_dir": str(package.root)}, meta, timeouts, client,
                           say=lambda text: say(text, err=True))
    if job.attached:
        say(f"Sweep {sweep} already has job {job.submission_id} pending or running: attached to it (nothing new "
            "submitted).")
    else:
        shipped = f" with {', '.join(package.shipped)}" if package.shipped else ""
        say(f"Submitted job {job.submission_id}: {package.spec_name}{shipped} -> {out}")
    say("Next steps:\n" + next_steps(sweep, address))
    if not wait:
        return 0
    say(f"Following the logs of {job.submission_id} (Ctrl-C stops following; the job keeps running).")
    try:
        status = follow(client, job.submission_id, _writer(), timeouts, address=address)
    except KeyboardInterrupt:
        say(f"\nStopped following; job {job.submission_id} keeps running.\n" + next_steps(sweep, address))
        return 130
    say(f"Job {job.submission_id} {status}.")
    if status != "SUCCEEDED":
        say(f"Resubmitting resumes the sweep as job {sweep}-<n+1>: finished units are skipped.")
    return exit_code(status)


def _echo(text: str, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _writer():
    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    return write
