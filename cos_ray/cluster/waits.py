"""Every remote wait has a timeout, and a timeout says what to check: `ray status` and the workers' logs.

`Timeouts` gathers the limits of each kind of wait so a caller (tests, a sweep spec) can tighten or relax them in one
place. The defaults suit real checkpoints: loading a 14 B expert from disk takes minutes, a 50-step A14B unit tens of
minutes; a collective waits for the slowest member to reach the same layer, so its limit bounds the members' skew.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.cluster.errors import WaitTimeout

CHECK = (
    "check `ray status` (resources, dead nodes) and the workers' logs "
    "(/tmp/ray/session_latest/logs/worker-*.err, or `ray logs`)"
)


@dataclass(frozen=True)
class Timeouts:
    """Seconds each kind of wait may take before it is reported as a failure."""

    start: float = 600.0  # placement group ready and actors started (may wait for free GPUs)
    load: float = 1800.0  # model loaded on every worker
    join: float = 120.0  # process-group rendezvous
    collective: float = 600.0  # one all-reduce / all-gather inside a worker
    unit: float = 4 * 3600.0  # one unit of work, end to end
    control: float = 60.0  # small control calls (leave a group, describe)


def get(refs, timeout: float, what: str):
    """`ray.get(refs)` that fails with a `WaitTimeout` saying what did not answer and what to check."""
    import ray
    from ray.exceptions import GetTimeoutError

    try:
        return ray.get(refs, timeout=timeout)
    except GetTimeoutError as err:
        raise WaitTimeout(f"{what}: no answer within {timeout:g} s; {CHECK}") from err


NOTICE_S = 5.0  # a placement not ready after this long is reported (`on_slow`) while the wait goes on


def placed(ready_ref, timeout: float, what: str, *, stop=None, on_slow=None, notice_after: float = NOTICE_S) -> None:
    """Wait for a placement group's `ready()` ref like `get`, but give up early when `stop` (a `threading.Event`) is
    set - its owner shut down - and call `on_slow()` once if it is not ready within `notice_after` s, so that a
    placement the cluster cannot give is said at once instead of after the whole timeout."""
    import time

    import ray

    deadline = time.monotonic() + timeout
    notice_at = time.monotonic() + notice_after
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"{what}: no answer within {timeout:g} s; {CHECK}")
        ready, _ = ray.wait([ready_ref], timeout=min(remaining, 0.5))
        if ready:
            get(ready_ref, max(remaining, 1.0), what)
            return
        if stop is not None and stop.is_set():
            raise WaitTimeout(f"{what}: given up, its owner shut down")
        if on_slow is not None and time.monotonic() >= notice_at:
            on_slow()
            on_slow = None
