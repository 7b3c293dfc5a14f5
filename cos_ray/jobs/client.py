"""Talking to a cluster's Ray Jobs server: one client, every request bounded by a timeout, errors that say what to check.

Built on `ray.job_submission.JobSubmissionClient`, which issues its HTTP requests without a timeout: each call runs
in a daemon thread and is abandoned after its limit, so a head node that accepts connections but never answers
cannot hang the CLI. Ray lets `RAY_ADDRESS` override an address passed explicitly; here an explicit `--address` wins.
A head node that has just started answers a submission with HTTP 500 "No available agent to submit job, please try
again later" until its job agent has registered (Ray's server waits 10 s for it per request): `until_served` asks
again, with backoff, for `JobTimeouts.agent` seconds, then says what to check.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass

from cos_ray.cluster.errors import ClusterError, WaitTimeout

ENV_ADDRESS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


def check_hint(address: str | None) -> str:
    """What to check when the job server does not answer."""
    where = address or os.environ.get("RAY_ADDRESS") or "http://127.0.0.1:8265 (Ray's default)"
    return (
        f"check the address ({where}: the head node's dashboard, e.g. --address http://HEAD:8265, or RAY_ADDRESS), "
        "that the cluster is up (`ray status` on the head node) and that the dashboard port is reachable from here"
    )


@dataclass(frozen=True)
class JobTimeouts:
    """Seconds each kind of wait on the job server may take."""

    connect: float = 30.0  # reach the server and check its version
    request: float = 60.0  # one request (status, list, stop, logs); submission uploads the working_dir: `submit`
    submit: float = 600.0  # upload the spec and task folders, create the job
    pending: float = 1800.0  # job created but not started (runtime env set-up, resources for the driver)
    follow: float | None = None  # following a running job: until it ends unless limited (`--timeout`)
    agent: float = 60.0  # a head that answers "try again later" (its job agent not up yet) is asked again this long


def bounded(fn, *args, timeout: float, what: str, address: str | None = None, **kwargs):
    """`fn(*args, **kwargs)` in a daemon thread; WaitTimeout after `timeout` s, connection errors as ClusterError."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as err:  # handed to the caller's thread
            result["error"] = err

    thread = threading.Thread(target=target, name=f"cos-ray-jobs: {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise WaitTimeout(f"{what}: no answer from the Ray job server within {timeout:g} s; {check_hint(address)}")
    if "error" in result:
        err = result["error"]
        if isinstance(err, ConnectionError) or type(err).__module__.startswith(("requests", "aiohttp", "urllib3")):
            raise ClusterError(f"{what}: cannot reach the Ray job server ({err}); {check_hint(address)}") from err
        raise err
    return result.get("value")


@contextlib.contextmanager
def _explicit(address: str | None):
    """Hide RAY_ADDRESS / RAY_API_SERVER_ADDRESS while Ray resolves an explicit address (Ray would prefer them)."""
    saved = {name: os.environ.pop(name) for name in ENV_ADDRESS if address and name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def connect(address: str | None = None, timeouts: JobTimeouts = JobTimeouts()):
    """A JobSubmissionClient for `address` (else RAY_ADDRESS, else Ray's default), reached within the timeout."""
    from ray.job_submission import JobSubmissionClient

    with _explicit(address):
        return bounded(JobSubmissionClient, address, timeout=timeouts.connect,
                       what=f"connecting to {address or 'RAY_ADDRESS'}", address=address)


def is_duplicate_id(err: Exception) -> bool:
    """Whether a submission was refused because the submission id was used before."""
    return isinstance(err, RuntimeError) and "already exists" in str(err)


TRY_AGAIN = "try again later"  # Ray's job server, while the head's job agent has not registered


def is_try_again(err: BaseException) -> bool:
    """Whether the job server refused a request only for now (HTTP 500 "No available agent ..., try again later")."""
    return isinstance(err, RuntimeError) and TRY_AGAIN in str(err)


def until_served(call, *, bound: float, what: str, address: str | None = None, say=None, first_delay: float = 1.0):
    """`call()`, asked again with backoff (1, 2, 4, ... 8 s) while the job server answers "try again later", for
    `bound` s at most; then a `WaitTimeout` saying what to check. `say(text)` is told once, at the first refusal."""
    deadline = time.monotonic() + bound
    delay, tries = first_delay, 0
    while True:
        tries += 1
        try:
            return call()
        except RuntimeError as err:
            if not is_try_again(err):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                answer = str(err).split(": ", 1)[-1].strip().rstrip(".")
                raise WaitTimeout(
                    f"{what}: the Ray job server kept answering {answer!r} for {bound:g} s ({tries} tries): the head "
                    "node's job agent is not up; check `ray status` on the head node and its dashboard agent's log "
                    "(/tmp/ray/session_latest/logs/dashboard_agent.log), then submit again"
                ) from None
            if say is not None and tries == 1:
                say(f"{what}: the Ray job server has no job agent yet (a head node that has just started?); asking "
                    f"again for up to {bound:g} s")
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 8.0)
