"""Run a fork group (`cos_ray.spec.forks`) in one process: each shared prefix once, each branch from its snapshot.

The branches run in the planner's order (parents first). A branch takes a snapshot before each step where another
unit leaves it; a snapshot is freed as soon as the last branch resuming from it has started from it (a branch
copies what it resumes). A branch that fails fails its own unit only: the error is kept as that unit's outcome, its
siblings run on; a branch whose snapshot its failed parent never took runs from noise instead (same result, more
passes). On a worker this is one call for the whole group (`run_group_on_worker`); every worker of a group runs
the same branches in the same order, so the collectives of an ensemble stay in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass
class BranchOutcome:
    """One unit of a fork group: its members (in member order) or the error that failed it; how it started."""

    unit_id: str | None
    members: list | None = None
    error: BaseException | None = None
    start: int = 0  # the step the branch resumed at (0: from noise)
    snapshot_bytes: int = 0  # size of the snapshot it resumed from
    started: object = None  # datetime (UTC) the branch started and finished
    finished: object = None


def run_fork_group(model, group, *, seed_group=None, seeds_of=None, interventions=(), on_branch=None) -> list:
    """`BranchOutcome`s of the group's branches, in branch order. `seeds_of(unit)`: this process's seeds of a unit
    (default: all of them); `on_branch(branch)` is called before each branch runs (tests, progress)."""
    from cos_ray.engine.snapshot import Fork
    from cos_ray.probes.program import run_program

    branches = group.branches
    pending = {}  # (parent, step) -> branches still to resume from it
    for index, branch in enumerate(branches):
        if branch.parent is not None:
            pending[(branch.parent, branch.start)] = pending.get((branch.parent, branch.start), 0) + 1
    snapshots = {}
    outcomes = []
    for index, branch in enumerate(branches):
        unit = branch.unit
        key = (branch.parent, branch.start)
        resume = snapshots.get(key)
        if resume is not None:
            pending[key] -= 1
            if pending[key] == 0:
                snapshots.pop(key)  # this branch copies what it resumes: the last one frees it
        fork = Fork(take=frozenset(branch.take), resume=resume)
        outcome = BranchOutcome(unit.unit_id, start=fork.start, snapshot_bytes=resume.nbytes if resume else 0)
        if on_branch is not None:
            on_branch(branch)
        seeds = list(seeds_of(unit) if seeds_of is not None else unit.seeds)
        outcome.started = datetime.now(timezone.utc)
        try:
            if hasattr(unit.task, "load"):  # a TaskRef: read its inputs (a worker gets units already loaded)
                unit = unit.loaded()
            outcome.members = run_program(model, unit.task, unit.settings, seeds, unit.program,
                                          ensemble=unit.ensemble, x0=unit.x0, seed_group=seed_group,
                                          interventions=list(interventions), fork=fork)
        except Exception as err:  # noqa: BLE001 - this unit's failure; its siblings run on
            outcome.error = err
        outcome.finished = datetime.now(timezone.utc)
        for step, snapshot in fork.taken.items():
            if pending.get((index, step)):
                snapshots[(index, step)] = snapshot
        outcomes.append(outcome)
    return outcomes


def run_group_on_worker(worker, group) -> list:
    """`SeedWorker.execute` target: the group on this worker's model and seed group; members as numpy.

    Units arrive loaded (`Unit.loaded()`) with their layouts resolved; this worker runs its slice of each unit's
    seeds (rank order, as `SeedWorker.run`)."""
    from cos_ray.cluster.worker import _to_numpy
    from cos_ray.errors import UsageError

    if worker.model is None:
        raise UsageError("this worker holds no model: call load() first")

    def seeds_of(unit):
        counts = list(unit.layout)
        offset = sum(counts[: worker.rank])
        return list(unit.seeds[offset: offset + counts[worker.rank]])

    outcomes = run_fork_group(worker.model, group, seed_group=worker.seeds, seeds_of=seeds_of,
                              interventions=list(worker.interventions))
    for outcome in outcomes:
        if outcome.members is not None:
            outcome.members = [_to_numpy(member) for member in outcome.members]
    return outcomes
