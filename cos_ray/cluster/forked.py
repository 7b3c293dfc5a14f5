"""A fork group of units (`cos_ray.spec.forks`) as one call on one worker group, with the sweep's failure rules.

The group's units share a prefix; one `execute` call runs all their branches on one group of workers
(`cos_ray.sweep.forks.run_group_on_worker`), so the snapshots never leave the workers. What each unit gets:

- its members, as an unforked run of it would (same ids, same rows);
- a deterministic failure inside its branch (a `CosRayError` such as bad input or NaN in a merged state): that
  unit fails; its siblings keep their members;
- anything else inside its branch (not a `CosRayError`) is treated as the cluster treats it for a single unit: the
  unit runs again alone, from noise, through `Coordinator.run_with_retries`;
- an infrastructure failure of the whole call (a worker died or stalled: `ClusterError`): the group was torn down;
  every unit of it runs again alone through `run_with_retries` (a fresh group, from noise), with its retries.

Reading a unit's inputs fails that unit only (the others are planned again without it).
"""

from __future__ import annotations

from datetime import datetime, timezone

from cos_ray.cluster.outcome import Attempt, UnitOutcome


def run_forked(coordinator, group, retries: int = 2) -> list[UnitOutcome]:
    """The `UnitOutcome` of every unit of `group` (a `ForkGroup`), in its branch order; never raises."""
    from cos_ray.spec.forks import fork_groups

    units = group.units
    if len(units) == 1:
        return [coordinator.run_with_retries(units[0], retries)]
    outcomes: dict[str, UnitOutcome] = {}
    ready, resolved = [], {}
    for unit in units:
        started = _now()
        try:
            resolved[unit.unit_id] = coordinator.resolve(unit)  # what the outcome holds (the store reads its task)
            ready.append(resolved[unit.unit_id].loaded())  # what the workers get
        except Exception as err:  # noqa: BLE001 - this unit's input: deterministic, it fails alone
            outcome = outcomes[unit.unit_id] = UnitOutcome(unit, error=err)
            outcome.attempts.append(Attempt(1, started, _now(), err))
    for part in fork_groups(ready):
        for outcome in _run_part(coordinator, part, retries, resolved):
            outcomes[outcome.unit.unit_id] = outcome
    return [outcomes[unit.unit_id] for unit in units]


def _run_part(coordinator, group, retries: int, resolved: dict) -> list[UnitOutcome]:
    """`group`'s units are loaded; `resolved[unit_id]` is each one as the store records it (task not read)."""
    from cos_ray.cluster.errors import ClusterError
    from cos_ray.errors import CosRayError
    from cos_ray.sweep.forks import run_group_on_worker

    units = [resolved[unit.unit_id] for unit in group.units]
    if len(units) == 1:
        return [coordinator.run_with_retries(units[0], retries)]
    layout = units[0].layout
    started = _now()
    try:
        parts, workers = _execute(coordinator, group, layout, run_group_on_worker)
    except ClusterError:  # the group was torn down: each unit again, alone, on a fresh group
        return [coordinator.run_with_retries(unit, retries) for unit in units]
    except Exception as err:  # noqa: BLE001 - a deterministic failure of the whole call reaches every unit
        return [_failed(unit, err, started) for unit in units]
    results = []
    for index, unit in enumerate(units):
        branches = [part[index] for part in parts]  # this unit's branch on every worker, in rank order
        error = next((branch.error for branch in branches if branch.error is not None), None)
        begun = min(branch.started for branch in branches)
        ended = max(branch.finished for branch in branches)
        if error is not None and not isinstance(error, CosRayError):
            results.append(coordinator.run_with_retries(unit, retries))  # not deterministic: again, alone
            continue
        outcome = UnitOutcome(unit, workers=list(workers))
        outcome.attempts.append(Attempt(1, begun, ended, error))
        if error is None:
            outcome.members = [member for branch in branches for member in branch.members]
        else:
            outcome.error = error
        results.append(outcome)
    return results


def _execute(coordinator, group, layout, fn):
    """Run `fn(worker, group)` on a free worker group formed for `layout`; (per-worker results, WorkerInfos)."""
    from cos_ray.cluster.errors import ClusterError

    index = coordinator._acquire()
    try:
        workers = coordinator._groups[index]
        if workers is None or not workers.alive:  # torn down by an earlier failure: a fresh group
            workers = coordinator._groups[index] = coordinator._build(index)
        try:
            workers.form(layout)
            timeout = workers.timeouts.unit * len(group)  # one unit's limit per branch
            return workers.execute(fn, group, members=len(layout), timeout=timeout), list(workers.info)
        except ClusterError:
            workers.shutdown()
            raise
    finally:
        coordinator._release(index)


def _failed(unit, err, started) -> UnitOutcome:
    outcome = UnitOutcome(unit, error=err)
    outcome.attempts.append(Attempt(1, started, _now(), err))
    return outcome


def _now() -> datetime:
    return datetime.now(timezone.utc)
