"""Run a fork group (`cos_ray.spec.forks`) in one process: each shared prefix once, each branch from its snapshot.

The branches run in the planner's order (parents first). A branch takes a snapshot before each step where another
unit leaves it; a snapshot is freed as soon as the last branch resuming from it has started from it (a branch
copies what it resumes). A branch that fails fails its own unit only: the error is kept as that unit's outcome, its
siblings run on; a branch whose snapshot its failed parent never took runs from noise instead (same result, more
passes). On a worker each branch is one call (`branch_on_worker`) and the snapshots wait on the worker between
calls, so the driver records each unit as its branch ends; every worker of a group runs the same branches in the
same order, so the collectives of an ensemble stay in lockstep.
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


class ForkRunner:
    """The branches of one fork group, run one at a time, in order, holding the snapshots between them.

    `seeds_of(unit)`: this process's seeds of a unit (default: all of them)."""

    def __init__(self, group, *, seed_group=None, seeds_of=None, interventions=()):
        self.group, self.seed_group, self.seeds_of = group, seed_group, seeds_of
        self.interventions = list(interventions)
        self.pending = {}  # (parent, step) -> branches still to resume from it
        for branch in group.branches:
            if branch.parent is not None:
                key = (branch.parent, branch.start)
                self.pending[key] = self.pending.get(key, 0) + 1
        self.snapshots = {}  # (branch index, step) -> Snapshot
        self.next = 0  # the next branch to run

    @property
    def done(self) -> bool:
        return self.next >= len(self.group.branches)

    @property
    def held_bytes(self) -> int:
        return sum(snapshot.nbytes for snapshot in self.snapshots.values())

    def run_next(self, model) -> BranchOutcome:
        """Run branch `self.next` (never raises for the branch's own failure: it is on the outcome)."""
        from cos_ray.engine.snapshot import Fork
        from cos_ray.probes.program import run_program

        index, branch = self.next, self.group.branches[self.next]
        self.next += 1
        unit = branch.unit
        key = (branch.parent, branch.start)
        resume = self.snapshots.get(key)
        if resume is not None:
            self.pending[key] -= 1
            if self.pending[key] == 0:
                self.snapshots.pop(key)  # this branch copies what it resumes: the last one frees it
        fork = Fork(take=frozenset(branch.take), resume=resume)
        outcome = BranchOutcome(unit.unit_id, start=fork.start, snapshot_bytes=resume.nbytes if resume else 0)
        seeds = list(self.seeds_of(unit) if self.seeds_of is not None else unit.seeds)
        outcome.started = datetime.now(timezone.utc)
        try:
            if hasattr(unit.task, "load"):  # a TaskRef: read its inputs (a worker gets units already loaded)
                unit = unit.loaded()
            outcome.members = run_program(model, unit.task, unit.settings, seeds, unit.program,
                                          ensemble=unit.ensemble, x0=unit.x0, seed_group=self.seed_group,
                                          interventions=list(self.interventions), fork=fork)
        except Exception as err:  # noqa: BLE001 - this unit's failure; its siblings run on
            outcome.error = err
        outcome.finished = datetime.now(timezone.utc)
        for step, snapshot in fork.taken.items():
            if self.pending.get((index, step)):
                self.snapshots[(index, step)] = snapshot
        return outcome


def run_fork_group(model, group, *, seed_group=None, seeds_of=None, interventions=()) -> list:
    """`BranchOutcome`s of the group's branches, in branch order (in one process: tests, benchmarks)."""
    runner = ForkRunner(group, seed_group=seed_group, seeds_of=seeds_of, interventions=interventions)
    return [runner.run_next(model) for _ in group.branches]


def branch_on_worker(worker, key: str, group=None):
    """`SeedWorker.execute` target: the next branch of fork group `key` on this worker; its `BranchOutcome`, members
    as numpy. The first call sends the group (units loaded, layouts resolved); the runner and its snapshots wait in
    `worker.state` for the next call and are dropped after the last branch (or with the worker, if it dies). Each
    worker runs its slice of each unit's seeds (rank order, as `SeedWorker.run`)."""
    from cos_ray.cluster.worker import _to_numpy
    from cos_ray.errors import UsageError

    if worker.model is None:
        raise UsageError("this worker holds no model: call load() first")
    runners = worker.state.setdefault("forks", {})
    if group is not None:
        runners.clear()  # one fork group at a time per worker: an abandoned one's snapshots go

        def seeds_of(unit):
            counts = list(unit.layout)
            offset = sum(counts[: worker.rank])
            return list(unit.seeds[offset: offset + counts[worker.rank]])

        runners[key] = ForkRunner(group, seed_group=worker.seeds, seeds_of=seeds_of,
                                  interventions=list(worker.interventions))
    runner = runners.get(key)
    if runner is None:
        raise UsageError(f"fork group {key}: not started on this worker (send the group with its first branch)")
    outcome = runner.run_next(worker.model)
    if runner.done:
        runners.pop(key)
    if outcome.members is not None:
        outcome.members = [_to_numpy(member) for member in outcome.members]
    return outcome
