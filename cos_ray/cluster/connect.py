"""The one way this process connects to Ray: an address, else `$RAY_ADDRESS`, else a fresh local cluster.

Every driver (a sweep, `cos-ray generate --workers`, `cos-ray verify`, the coordinator made by hand) goes through
`connect`, so they all see the same options: no dashboard for an embedded cluster, no worker logs streamed to the
driver (errors name the workers' log files instead, see `waits.CHECK`), Ray's logging setup left alone, and this
process's own SIGTERM handler kept (`ray.init` installs one that logs and dies, which would skip the sweep's
"interrupted" record). A process without a handler of its own gets one that exits (143) through Python's shutdown
rather than Ray's (a stack dump and an abort): `atexit` then runs `ray.shutdown`, which stops an embedded cluster's
processes (GCS, raylet, agents, workers), so SIGTERM, like Ctrl-C, leaves nothing running. A process already
connected is left as it is: tests connect once per session.

`address="local"` (what an unset address means here) always starts a fresh cluster, never joins one that happens to
run on this machine: a sweep run without an address must not land on somebody else's cluster.
"""

from __future__ import annotations

import logging
import os

from cos_ray.cluster.errors import RayUnavailable


def connect(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Connect to Ray once: `address`, else `$RAY_ADDRESS`, else a fresh local cluster (`"local"` asks for one
    explicitly, whatever `$RAY_ADDRESS` says; `num_cpus` applies to it only)."""
    import ray

    if ray.is_initialized():
        return
    import signal
    import threading

    on_term = signal.getsignal(signal.SIGTERM)
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    options = dict(log_to_driver=False, configure_logging=False)
    try:
        if address == "local":
            _drop_token_notice()
            ray.init(address="local", include_dashboard=False, num_cpus=num_cpus, **options)
        else:
            ray.init(address=address, **options)
    except Exception as err:  # Ray says why in its own words (a node that timed out starting, a refused address)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        if address == "local":
            raise RayUnavailable(f"Ray could not start a local cluster ({reason}); check free memory and disk (df /tmp) "
                                 "and Ray's logs under /tmp/ray/session_latest/logs, or pass --address") from None
        raise RayUnavailable(f"could not connect to Ray at {address} ({reason}); check `ray status` on the head and "
                             "that this address is its GCS (host:6379) or ray://host:10001") from None
    if threading.current_thread() is threading.main_thread():  # keep ours, else exit cleanly (the docstring)
        kept = callable(on_term) or on_term == signal.SIG_IGN
        signal.signal(signal.SIGTERM, on_term if kept else _exit_on_sigterm)


def _exit_on_sigterm(signum, _frame) -> None:
    """SIGTERM in a process with no handler of its own: unwind and exit 128 + 15, running `atexit` (ray.shutdown)."""
    raise SystemExit(128 + signum)


class _TokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster.")


def _drop_token_notice() -> None:
    """Ray turns token authentication on for a new local cluster and says so on every run, in the middle of the
    sweep's progress; the cluster is cos-ray's own and the token stays on: drop that one line at its logger."""
    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(existing, _TokenNotice) for existing in logger.filters):
        logger.addFilter(_TokenNotice())


def fit_groups(workers: int, gpus_per_worker: float = 0) -> int:
    """Worker groups of `workers` workers the connected cluster fits now: by GPUs for GPU workers, else one CPU core
    per CPU worker (at least 1)."""
    import ray

    resources = ray.cluster_resources()
    if gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) // (workers * gpus_per_worker)))
    return max(1, int(resources.get("CPU", 1) // workers))
