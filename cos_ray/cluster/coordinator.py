"""The driver's side: worker groups built once, units of work fed to them in lockstep, member results collected.

What the sweep calls. Groups and their loaded models are reused across units: a unit with another layout re-forms
the process group over the same workers (milliseconds), never reloads a model. Independent runs (no ensemble) go
through the same workers, each worker sampling its seeds on its own, with no collective. `run_with_retries` is the one way
to run a unit: it resolves the unit's layout, reads its inputs, runs it on a free group and, after an infrastructure
failure, again on a fresh group (the policy is in `retry.py`); it returns the unit's `UnitOutcome` and never raises.
`run_unit` is its shorthand for one attempt that returns the members or raises what failed them. Running several
units at once is the caller's scheduling (the sweep runner's threads, one per group): the groups are handed out one
unit at a time.

A dead group costs its rebuild, never the units' time. A group that failed is torn down and its slot left empty; the
next unit that asks for a group starts the slot's rebuild in a background thread and takes whichever live group is
idle - it waits only while every live group is busy, for the first one freed or rebuilt. A rebuild whose placement
the cluster cannot give (a dead node took its resources) is said within `waits.NOTICE_S` - or when the sweep ends,
if it ends first -, with what it asked for and what the cluster has (`on_notice`), and waits in the background up to
`timeouts.start` while the live groups go on; a rebuild that fails leaves its slot out for good (said too). When no
group is live and none is being rebuilt, the units left fail with `NoGroupLeft` instead of waiting.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from cos_ray.cluster.outcome import UnitOutcome
from cos_ray.cluster.waits import Timeouts
from cos_ray.engine.parallel_layout import ranks_per_replica
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
                 timeouts: Timeouts = Timeouts(), ray_address: str | None = None, on_build=None, on_notice=None,
                 parallel: dict | None = None):
        """`on_build(group)` is called with each group once built (its models loaded), before it runs anything - the
        first groups and every group rebuilt after a failure (fault drills, warm-ups). `on_notice(text)` tells the
        user about groups lost and rebuilt, and placements the cluster cannot give (default: a line on stderr)."""
        from cos_ray.cluster.connect import connect

        if groups < 1:
            raise UsageError(f"groups: expected >= 1, got {groups}")
        self.layout = tuple(int(count) for count in layout)
        if not self.layout or min(self.layout) < 1:
            raise UsageError(f"layout: expected seeds per worker like [1, 1, 1] or [2, 1], got {list(layout)}")
        self.workers = len(self.layout)
        self.model, self.device, self.lora, self.offload, self.timeouts = model, device, lora, offload, timeouts
        self.experts = experts  # ComfyUI single-file experts over `model` as the base directory
        self.resources = dict(cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker, parallel=parallel)
        self.ranks_per_replica = ranks_per_replica(parallel)  # `layout` counts replicas of cfg x ulysses workers
        connect(ray_address)  # `ray_address`, else $RAY_ADDRESS, else a fresh local cluster (see connect.py)
        self._groups = [None] * groups
        self._free = list(range(groups))  # live groups, idle; a busy one is out of it, a dead one is out for good
        self._busy: set[int] = set()  # handed out, not yet released
        self._rebuilding: dict[int, threading.Thread] = {}
        self._lost: dict[int, BaseException] = {}  # slots whose rebuild failed: never tried again
        self._unplaced: set[str] = set()  # builds waiting for their placement, not said yet
        self._lock = threading.Condition()
        self._stop = threading.Event()  # set by `shutdown`: builds waiting for a placement give up
        self._built = 0
        self._closed = False
        self.on_build = on_build
        self.on_notice = on_notice or _print_notice
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

        with self._lock:
            if self._closed:
                raise UsageError("this coordinator was shut down; create a new one")
            self._built += 1
            name = f"group-{index}.{self._built}"
            self._unplaced.add(name)

        def placed() -> bool:  # True the first time: the build was still waiting, unsaid
            with self._lock:
                unsaid = name in self._unplaced
                self._unplaced.discard(name)
            return unsaid

        def slow() -> None:  # said once: when slow, else by `shutdown` if the sweep ends first
            if placed():
                self.on_notice(self._waiting_for_placement(name))

        try:
            group = WorkerGroup(self.workers * self.ranks_per_replica, self.model, device=self.device, lora=self.lora,
                                offload=self.offload, experts=self.experts, timeouts=self.timeouts, name=name,
                                stop=self._stop, on_placed=placed, on_slow=slow, **self.resources)
        finally:
            placed()  # a build that failed is said by its caller
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
            group = self._groups[index]  # live when handed out (a dead worker is found by the call below)
            try:
                return group.run(ready), list(group.info), unit
            except ClusterError:
                group.shutdown()  # the group is the unit of failure, whichever wait gave up (idempotent)
                raise
        finally:
            self._release(index)

    def _acquire(self) -> int:
        """A live, idle group's index. Dead slots are never handed out: asking starts their rebuild in the background
        and takes a live group if one is idle, else waits for the first one freed or rebuilt; an idle group whose
        placement lost its node is torn down here, before a unit is sent to it. A group is busy for one unit at most and
        a rebuild takes a placement and a load at most, so a longer wait means a caller never released its group.
        Raises `NoGroupLeft` when no group is live and none is being rebuilt."""
        import time

        from cos_ray.cluster.capacity import on_dead_node
        from cos_ray.cluster.errors import NoGroupLeft
        from cos_ray.cluster.waits import CHECK

        limit = self.timeouts.start + self.timeouts.load + self.timeouts.unit
        deadline = time.monotonic() + limit
        while True:
            index, lost = self._next_idle(deadline, limit)
            if index is None:
                raise NoGroupLeft(f"no worker group left: all {len(self._groups)} failed and could not be rebuilt "
                                  f"({lost}); {self._cluster_now()}; {CHECK}")
            group = self._groups[index]
            if group.placement is None or not on_dead_node(group.placement):  # Ray asked outside the lock
                return index
            self.on_notice(f"{group.name} was on a node that died; tearing it down")
            group.shutdown()
            self._release(index)  # dead: its slot is rebuilt by the next turn

    def _next_idle(self, deadline: float, limit: float) -> tuple[int | None, str]:
        """(an idle live group's index, marked busy, ""), or (None, the lost slots' reasons) when none is left."""
        import time

        from cos_ray.cluster.waits import CHECK, WaitTimeout

        with self._lock:
            while True:
                if self._closed:
                    raise UsageError("this coordinator was shut down; create a new one")
                self._rebuild_dead_slots()
                if self._free:
                    index = self._free.pop(0)
                    self._busy.add(index)
                    return index, ""
                if not self._busy and not self._rebuilding:
                    return None, "; ".join(f"group {index}: {_first_line(err)}" for index, err in self._lost.items())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(f"no worker group of {len(self._groups)} became free within {limit:g} s "
                                      f"(each is busy one unit at most); {CHECK}")
                self._lock.wait(timeout=min(remaining, 5.0))

    def _release(self, index: int) -> None:
        """Back from a unit: idle if its group is live; else its slot waits, empty, for the next `_acquire` to rebuild
        it."""
        with self._lock:
            self._busy.discard(index)
            group = self._groups[index]
            if group is not None and group.alive and index not in self._free:
                self._free.append(index)
            self._lock.notify_all()

    # -- rebuilds (under the lock) ---------------------------------------------------------------------------------
    def _rebuild_dead_slots(self) -> None:
        """Start a background rebuild of every slot whose group is dead, unless it is in use (its holder has not
        released it yet), being rebuilt, or lost."""
        for index, group in enumerate(self._groups):
            if ((group is not None and group.alive) or index in self._busy or index in self._rebuilding
                    or index in self._lost):
                continue
            if index in self._free:
                self._free.remove(index)
            live = self._live()
            self.on_notice(f"{group.name if group is not None else f'group {index}'} is down; rebuilding it in the "
                           f"background while {live} live group(s) go on")
            thread = threading.Thread(target=self._rebuild, args=(index,), name=f"cos-ray-rebuild-{index}",
                                      daemon=True)
            self._rebuilding[index] = thread
            thread.start()

    def _rebuild(self, index: int) -> None:
        """The background rebuild of slot `index`: its fresh group joins the idle ones, or the slot is lost."""
        try:
            group = self._build(index)
        except BaseException as err:  # noqa: BLE001 - reported, and the slot left out
            with self._lock:
                self._rebuilding.pop(index, None)
                if self._closed:
                    return
                self._lost[index] = err
                live = self._live()
                self._lock.notify_all()
            self.on_notice(f"group {index} could not be rebuilt ({_first_line(err)}); the sweep goes on with {live} "
                           f"live group(s)")
            return
        with self._lock:
            self._rebuilding.pop(index, None)
            if not self._closed:
                self._groups[index] = group
                self._free.append(index)
                self._lock.notify_all()
                return
        group.shutdown()  # shut down while it was being built

    def _waiting_for_placement(self, name: str, ended: bool = False) -> str:
        """The notice of a build whose placement the cluster does not give now (`ended`: nor before the end)."""
        bundle = {"CPU": self.resources["cpus_per_worker"]}
        if self.resources["gpus_per_worker"]:
            bundle["GPU"] = self.resources["gpus_per_worker"]
        live = self._live()
        actors = self.workers * self.ranks_per_replica
        said = (f"{name}: the cluster cannot place it now: it asks for {actors} worker(s) of {bundle}; "
                f"{self._cluster_now()} (see `ray status`)")
        if ended:
            return f"{said}; given up: the sweep ended first"
        return (f"{said}; waiting up to {self.timeouts.start:g} s for it"
                + (f" in the background while {live} live group(s) go on" if live else ""))

    def _live(self) -> int:
        return sum(1 for group in self._groups if group is not None and group.alive)

    @staticmethod
    def _cluster_now() -> str:
        from cos_ray.cluster.capacity import cluster_now

        return cluster_now()

    # -- groups --------------------------------------------------------------------------------------------------
    @property
    def groups(self) -> list:
        """The worker groups (tests, benchmarks: `group.execute(fn)` runs code on its workers)."""
        return list(self._groups)

    def shutdown(self) -> None:
        """Kill every worker and free the placements (idempotent); rebuilds under way give up. Ray itself is left
        running."""
        with self._lock:
            self._closed = True
            unsaid, self._unplaced = sorted(self._unplaced), set()
            self._stop.set()
            self._lock.notify_all()
        for name in unsaid:  # rebuilds the cluster had not placed within `waits.NOTICE_S` when the units ran out
            self.on_notice(self._waiting_for_placement(name, ended=True))
        for group in self._groups:
            if group is not None:
                group.shutdown()
        self._groups = [None] * len(self._groups)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False


def _print_notice(text: str) -> None:
    print(f"cos-ray: {text}", file=sys.stderr, flush=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]
