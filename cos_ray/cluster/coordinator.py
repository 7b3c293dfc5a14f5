"""The driver's side: worker groups built once, units of work fed to them in lockstep, member results collected.

What the sweep calls. Groups and their loaded models are reused across units: a unit with another layout re-forms
the process group over the same workers (milliseconds), never reloads a model. Independent runs (no ensemble) go
through the same workers, each worker sampling its seeds on its own, with no collective. A group that failed is torn
down and rebuilt, lazily, for the next unit. `run_with_retries` is the one way to run a unit: it resolves the unit's
layout, reads its inputs, runs it on a free group and, after an infrastructure failure, again on a fresh group (the
policy is in `retry.py`); it returns the unit's `UnitOutcome` and never raises. `run_unit` is its shorthand for one
attempt that returns the members or raises what failed them. Running several units at once is the caller's
scheduling (the sweep runner's threads, one per group): the groups are handed out one unit at a time.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from cos_ray.cluster.outcome import UnitOutcome
from cos_ray.cluster.waits import Timeouts
from cos_ray.errors import UsageError
from cos_ray.spec.unit import Unit


class Coordinator:
    """`groups` groups of `len(layout)` workers, each holding `model`; units run on whichever group is free.

    `layout` is the default worker layout (seeds per worker) of a unit with `sum(layout)` seeds; other units spread
    their seeds evenly unless they give their own layout.
    """

    def __init__(self, model: str, layout=(1,), *, groups: int = 1, device: str | None = None,
                 lora: dict | None = None, offload: bool = False, experts: dict | None = None,
                 cpus_per_worker: float = 0.5, gpus_per_worker: float = 0,
                 timeouts: Timeouts = Timeouts(), ray_address: str | None = None, on_build=None):
        """`on_build(group)` is called with each group once built (its models loaded), before it runs anything - the
        first groups and every group rebuilt after a failure (fault drills, warm-ups)."""
        from cos_ray.cluster.connect import connect

        if groups < 1:
            raise UsageError(f"groups: expected >= 1, got {groups}")
        self.layout = tuple(int(count) for count in layout)
        if not self.layout or min(self.layout) < 1:
            raise UsageError(f"layout: expected seeds per worker like [1, 1, 1] or [2, 1], got {list(layout)}")
        self.workers = len(self.layout)
        self.model, self.device, self.lora, self.offload, self.timeouts = model, device, lora, offload, timeouts
        self.experts = experts  # ComfyUI single-file experts over `model` as the base directory
        self.resources = dict(cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker)
        connect(ray_address)  # `ray_address`, else $RAY_ADDRESS, else a fresh local cluster (see connect.py)
        self._groups = [None] * groups
        self._free = list(range(groups))
        self._lock = threading.Condition()
        self._built = 0
        self._closed = False
        self.on_build = on_build
        with ThreadPoolExecutor(groups) as pool:  # groups load their models in parallel
            futures = [pool.submit(self._build, index) for index in range(groups)]
        for index, future in enumerate(futures):
            if future.exception() is None:
                self._groups[index] = future.result()
        failed = [future.exception() for future in futures if future.exception() is not None]
        if failed:
            self.shutdown()
            raise failed[0]

    def _build(self, index: int):
        from cos_ray.cluster.group import WorkerGroup

        if self._closed:
            raise UsageError("this coordinator was shut down; create a new one")
        self._built += 1
        group = WorkerGroup(self.workers, self.model, device=self.device, lora=self.lora, offload=self.offload,
                            experts=self.experts, timeouts=self.timeouts, name=f"group-{index}.{self._built}",
                            **self.resources)
        if self.on_build is not None:
            try:
                self.on_build(group)
            except BaseException:
                group.shutdown()
                raise
        return group

    @property
    def built(self) -> int:
        """Groups built so far (the first ones and every rebuild after a failure)."""
        return self._built

    # -- units ---------------------------------------------------------------------------------------------------
    def resolve(self, unit: Unit) -> Unit:
        """The unit with its layout made explicit: its own, else the default layout if it fits, else an even split."""
        return unit.resolved(self.workers, default=self.layout)

    def run_with_retries(self, unit: Unit, retries: int = 2) -> UnitOutcome:
        """Run a unit, retrying infrastructure failures from step 0 on a fresh group up to `retries` times (see
        `retry.py`); never raises. The outcome holds the resolved unit, the members or the error, and every attempt."""
        from cos_ray.cluster.retry import run_with_retries

        return run_with_retries(self, unit, retries)

    def run_unit(self, task, settings, seeds, *, ensemble=None, x0=None, program=None, layout=None) -> list:
        """One attempt of a unit made of these parts; its `MemberResult`s in member (seed) order. Raises what failed
        it (an infrastructure failure as `RetriesExhausted`, after its one attempt)."""
        outcome = self.run_with_retries(Unit(task, settings, tuple(seeds), ensemble, x0, program, layout), retries=0)
        if not outcome.ok:
            raise outcome.error
        return outcome.members

    def attempt(self, unit: Unit) -> tuple[list, list, Unit]:
        """One attempt, for `retry.run_with_retries`: (members, the group's `WorkerInfo`s, the resolved unit).

        Raises what failed it; an infrastructure failure (`ClusterError`) leaves the group torn down."""
        from cos_ray.cluster.errors import ClusterError

        unit = self.resolve(unit)
        ready = unit.loaded()  # the task's inputs, read on the driver and sent to the workers
        index = self._acquire()
        try:
            group = self._groups[index]
            if group is None or not group.alive:  # torn down by an earlier failure: a fresh group, fresh workers
                group = self._groups[index] = self._build(index)
            try:
                return group.run(ready), list(group.info), unit
            except ClusterError:
                group.shutdown()  # the group is the unit of failure, whichever wait gave up (idempotent)
                raise
        finally:
            self._release(index)

    def _acquire(self) -> int:
        """A free group's index. A group is busy for one attempt at most - a rebuild (placement, loading) and one unit
        - so a wait longer than that means a caller never released its group."""
        import time

        from cos_ray.cluster.waits import CHECK, WaitTimeout

        limit = self.timeouts.start + self.timeouts.load + self.timeouts.unit
        deadline = time.monotonic() + limit
        with self._lock:
            while not self._free:
                if self._closed:
                    raise UsageError("this coordinator was shut down; create a new one")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(f"no worker group of {len(self._groups)} became free within {limit:g} s "
                                      f"(each is busy one unit at most); {CHECK}")
                self._lock.wait(timeout=min(remaining, 5.0))
            return self._free.pop(0)

    def _release(self, index: int) -> None:
        with self._lock:
            self._free.append(index)
            self._lock.notify()

    # -- groups --------------------------------------------------------------------------------------------------
    @property
    def groups(self) -> list:
        """The worker groups (tests, benchmarks: `group.execute(fn)` runs code on its workers)."""
        return list(self._groups)

    def shutdown(self) -> None:
        """Kill every worker and free the placements (idempotent). Ray itself is left running."""
        self._closed = True
        for group in self._groups:
            if group is not None:
                group.shutdown()
        self._groups = [None] * len(self._groups)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False
