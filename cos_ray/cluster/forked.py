"""A fork group of units (`cos_ray.spec.forks`) on one worker group, a call per branch, under the sweep's failure rules.

The group's units share a prefix; they run on one group of workers, one `execute` call per branch
(`cos_ray.sweep.forks.branch_on_worker`), the snapshots waiting on the workers between calls (they never leave them).
Each unit's outcome is handed on as its branch ends, so the sweep writes it then. What each unit gets:

- its members, as an unforked run of it would (same ids, same rows);
- a deterministic failure inside its branch (a `CosRayError` such as bad input or NaN in a merged state): that
  unit fails; its siblings keep their members;
- anything else inside its branch (not a `CosRayError`) is treated as the cluster treats it for a single unit: the
  unit runs again alone, from noise, through `Coordinator.run_with_retries`;
- an infrastructure failure (a worker died or stalled: `ClusterError`): the group was torn down, with its
  snapshots; that unit and the ones after it run again alone through `run_with_retries` (a fresh group, from noise),
  with their retries.

Reading a unit's inputs fails that unit only (the others are planned again without it).
"""

from __future__ import annotations

from datetime import datetime, timezone

from cos_ray.cluster.outcome import Attempt, UnitOutcome


def run_forked(coordinator, group, retries: int = 2, emit=None) -> list[UnitOutcome]:
    """The `UnitOutcome` of every unit of `group` (a `ForkGroup`), in its branch order; never raises.

    `emit(outcome)` is called with each unit's outcome as soon as it is known (the sweep records it then)."""
    from cos_ray.spec.forks import fork_groups

    emit = emit or (lambda outcome: None)
    units = group.units
    if len(units) == 1:
        outcome = coordinator.run_with_retries(units[0], retries)
        emit(outcome)
        return [outcome]
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
            emit(outcome)
    for part in fork_groups(ready):
        for outcome in _run_part(coordinator, part, retries, resolved, emit):
            outcomes[outcome.unit.unit_id] = outcome
    return [outcomes[unit.unit_id] for unit in units]


def _run_part(coordinator, group, retries: int, resolved: dict, emit) -> list[UnitOutcome]:
    """`group`'s units are loaded; `resolved[unit_id]` is each one as the store records it (task not read)."""
    from cos_ray.cluster.errors import ClusterError
    from cos_ray.errors import CosRayError
    from cos_ray.sweep.forks import branch_on_worker

    units = [resolved[unit.unit_id] for unit in group.units]
    results, alone = [], []  # alone: units to run again by themselves once the group is released

    def done(outcome):
        results.append(outcome)
        emit(outcome)

    if len(units) == 1:
        alone = units
    else:
        key = units[0].unit_id  # the trunk's id names the fork group on the workers
        layout = units[0].layout
        index = coordinator._acquire()
        try:
            workers = coordinator._groups[index]
            for number, unit in enumerate(units):
                started = _now()
                try:
                    if workers is None or not workers.alive:  # torn down by an earlier failure: a fresh group
                        workers = coordinator._groups[index] = coordinator._build(index)
                    workers.form(layout)
                    branches = workers.execute(branch_on_worker, key, group if number == 0 else None,
                                               members=len(layout))  # this unit's branch on every worker, rank order
                except ClusterError:  # the group was torn down: this unit and the rest again, alone, fresh group
                    if workers is not None:
                        workers.shutdown()
                    alone = alone + units[number:]
                    break
                except Exception as err:  # noqa: BLE001 - deterministic, on every worker: the whole call failed
                    done(_failed(unit, err, started))
                    alone = []
                    for rest in units[number + 1:]:
                        done(_failed(rest, err, started))
                    break
                error = next((branch.error for branch in branches if branch.error is not None), None)
                if isinstance(error, ClusterError):  # a collective broke inside the branch: the group goes
                    workers.shutdown()
                    alone = alone + units[number:]
                    break
                if error is not None and not isinstance(error, CosRayError):
                    alone.append(unit)  # not deterministic: again, alone (its children resume without it)
                    continue
                outcome = UnitOutcome(unit, workers=list(workers.info))
                outcome.attempts.append(Attempt(1, min(b.started for b in branches), max(b.finished for b in branches),
                                                error))
                if error is None:
                    outcome.members = [member for branch in branches for member in branch.members]
                else:
                    outcome.error = error
                done(outcome)
        finally:
            coordinator._release(index)
    for unit in alone:
        done(coordinator.run_with_retries(unit, retries))
    return results


def _failed(unit, err, started) -> UnitOutcome:
    outcome = UnitOutcome(unit, error=err)
    outcome.attempts.append(Attempt(1, started, _now(), err))
    return outcome


def _now() -> datetime:
    return datetime.now(timezone.utc)
