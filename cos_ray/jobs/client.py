"""Talking to a cluster's Ray Jobs server: one client, every request bounded by a timeout, errors that say what to check.

Built on `ray.job_submission.JobSubmissionClient`, which issues its HTTP requests without a timeout: each call runs
in a daemon thread and is abandoned after its limit, so a head node that accepts connections but never answers
cannot hang the CLI. Ray lets `RAY_ADDRESS` override an address passed explicitly; here an explicit `--address` wins.
"""

from __future__ import annotations

import contextlib
import os
import threading
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
