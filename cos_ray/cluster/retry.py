"""The retry policy: a unit that met an infrastructure failure runs again, from step 0, on a fresh group.

- Only infrastructure failures (`ClusterError`: a worker died - mid-unit or while idle -, stalled past a timeout, a
  collective broke, or raised anything that is not a `CosRayError`: `WorkerGroup` classifies every call to its workers
  the same way and turns these into `GroupFailed`) are retried. The failed group has already been torn down by `WorkerGroup` (the group is the unit of failure; members of
  a collective are never restarted one by one), and the coordinator builds a fresh one - fresh workers, model loaded
  again, new process group - for the next attempt. A unit has no checkpoint inside it: a retry starts at step 0.
- Deterministic failures (`CosRayError`s that are not `ClusterError`s: a bad layer range, NaN or inf in a merged
  hidden state, an `InputError` for a task file that cannot be used) fail on every member together, the group is kept,
  and the unit fails at once: running it again would fail the same way. An exception raised on the driver before any
  worker is called (resolving the layout, reading the task's inputs) is not retried either.
- When every group failed and none could be rebuilt (`NoGroupLeft`: the coordinator's rebuilds run in the
  background, and a slot whose rebuild failed is not tried again), the unit fails at once, not retried.
- After `retries` retries the unit is reported failed with the last reason and the number of attempts
  (`RetriesExhausted`, itself a `ClusterError`).
- A failed attempt leaves nothing behind: members are returned only by an attempt that succeeded on every worker.
  Ray itself never retries: the workers are actors with `max_restarts=0, max_task_retries=0`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from cos_ray.cluster.errors import ClusterError, NoGroupLeft
from cos_ray.cluster.outcome import Attempt, UnitOutcome


class RetriesExhausted(ClusterError):
    """A unit failed on every attempt, each on a fresh group."""

    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


def retryable(err: BaseException) -> bool:
    """An infrastructure failure: the same unit may succeed on a fresh group (not when no group is left)."""
    return isinstance(err, ClusterError) and not isinstance(err, (RetriesExhausted, NoGroupLeft))


def run_with_retries(coordinator, unit, retries: int) -> UnitOutcome:
    """The `UnitOutcome` of running `unit` on `coordinator`'s groups (`coordinator.attempt`), retrying
    infrastructure failures.

    Never raises (but for KeyboardInterrupt and the like): the unit's members, or its error, land on the outcome, with
    every attempt in `outcome.attempts`.
    """
    if retries < 0:
        from cos_ray.errors import UsageError

        raise UsageError(f"retries: expected >= 0, got {retries}")
    outcome = UnitOutcome(unit)
    for number in range(1, retries + 2):
        started = _now()
        try:
            members, workers, resolved = coordinator.attempt(unit)
        except Exception as err:  # noqa: BLE001 - reported on the outcome
            outcome.attempts.append(Attempt(number, started, _now(), err))
            if not retryable(err):
                outcome.error = err
                return outcome
            continue
        outcome.attempts.append(Attempt(number, started, _now()))
        outcome.unit, outcome.members, outcome.workers, outcome.error = resolved, members, workers, None
        return outcome
    last = outcome.attempts[-1].error
    earlier = "; ".join(f"attempt {a.number}: {_first_line(a.error)}" for a in outcome.attempts[:-1])
    outcome.error = RetriesExhausted(
        f"{last} (failed {len(outcome.attempts)} time(s), each on a fresh group"
        + (f"; earlier: {earlier}" if earlier else "") + ")",
        len(outcome.attempts),
    )
    outcome.error.__cause__ = last
    return outcome


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:200]


def _now() -> datetime:
    return datetime.now(timezone.utc)
