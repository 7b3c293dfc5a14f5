"""A worker group: N model-holding workers placed together, joined by one process group, called in lockstep.

The group is the unit of failure (Ray Train, vLLM's Ray executor): members of a collective cannot be restarted one by
one - a restarted member would have lost its place in the group and in the trajectory - so the actors are created with
`max_restarts=0, max_task_retries=0` (Ray never re-runs a collective method by itself), and when a member dies or
stalls the whole group is torn down (`shutdown`); whoever owns it builds a fresh one.

Placement: one bundle per worker, holding that worker's CPUs and GPUs. A bundle always lies on one node, so a
worker's GPUs are strictly packed by construction (STRICT_PACK within a worker); the group's bundles are PACKed, on
as few nodes as fit, to keep the all-reduce on NVLink/loopback where possible.

One call path (as Ray Train's worker group): loading, describing, forming the process group, running a unit and
`execute` all go through `_call` -> `_collect`, so every call meets the same failure classification. A deterministic
error (a `CosRayError` that is not a `ClusterError`: bad input such as `InputError` / `UsageError`, NaN in a merged
state) raised by every member keeps the group; anything else - an actor that died (even while idle between two
units), a wait past its timeout, a broken NCCL/gloo collective - tears the group down and raises a `ClusterError`
that the retry policy answers with a fresh group. A call on a group that was shut down raises `GroupFailed`.
"""

from __future__ import annotations

from cos_ray.cluster import waits
from cos_ray.cluster.errors import ClusterError, GroupFailed
from cos_ray.cluster.outcome import WorkerInfo
from cos_ray.cluster.waits import CHECK, Timeouts
from cos_ray.engine.parallel_layout import ranks_per_replica
from cos_ray.errors import CosRayError, UsageError
from cos_ray.spec.layout import split_seeds

_ACTOR_OPTIONS = dict(max_restarts=0, max_task_retries=0)  # the group, not Ray, handles failures


class WorkerGroup:
    """`size` workers, each loading `model`; `run(unit)` runs a resolved unit on the first `len(unit.layout)`."""

    def __init__(self, size: int, model: str | None, *, device: str | None = None, lora: dict | None = None,
                 offload: bool = False, experts: dict | None = None, cpus_per_worker: float = 0.5,
                 gpus_per_worker: float = 0, timeouts: Timeouts = Timeouts(),
                 name: str = "group", stop=None, on_slow=None, on_placed=None, parallel: dict | None = None):
        """`stop` (a `threading.Event`): give up waiting for the placement once set (the owner shut down);
        `on_slow()`: called once if the placement is not ready within `waits.NOTICE_S` (the cluster lacks resources);
        `on_placed()`: called once it is.
        `parallel` ({ulysses: K, fsdp: bool, cfg: bool}): every K (2K with cfg) consecutive workers hold one replica
        of the model, sharded over
        one mesh of all `size` workers built once after loading (`_form_mesh`); layouts then count replicas."""
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from cos_ray.cluster.worker import SeedWorker

        self.size, self.name, self.timeouts = size, name, timeouts
        self.parallel = dict(parallel) if parallel else None
        self.ranks_per_replica = ranks_per_replica(self.parallel)  # cfg sets x ulysses ranks
        self.layout = None  # seeds per worker of the process group the workers are in now
        self.workers = []
        self.info: list[WorkerInfo] = []  # per worker, in rank order
        bundle = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
        self.placement = placement_group([dict(bundle) for _ in range(size)], strategy="PACK", name=name)
        try:
            waits.placed(self.placement.ready(), timeouts.start,
                         f"{name}: placing {size} worker(s) of {bundle} (not enough free resources?)",
                         stop=stop, on_slow=on_slow)
            if on_placed is not None:
                on_placed()
            actor = ray.remote(SeedWorker)
            self.workers = [
                actor.options(
                    num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, **_ACTOR_OPTIONS,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(self.placement, placement_group_bundle_index=i),
                ).remote()
                for i in range(size)
            ]
            if model is not None:
                self.info = self._call("load", [(model, device, lora)] * size, timeouts.load,
                                       f"loading {model} on {size} worker(s)", offload=offload, experts=experts)
                if self.parallel:
                    self._form_mesh()
            else:
                self.info = self._call("describe", [()] * size, timeouts.start, "starting workers")
        except BaseException:
            self.shutdown()
            raise

    def describe(self) -> list[WorkerInfo]:
        """Each worker's `WorkerInfo` now, in rank order (asks the workers: a dead one breaks the group)."""
        return self._call("describe", [()] * self.size, self.timeouts.control, "describing the workers")

    # -- process group -------------------------------------------------------------------------------------------
    @property
    def replicas(self) -> int:
        """Copies of the model the group holds: its workers, or its workers / K with a parallel layout."""
        return self.size // self.ranks_per_replica

    def _form_mesh(self) -> None:
        """All workers into one process group and one mesh (seed, cfg, ring, ulysses); each shards its model over it."""
        [address] = self._call("open_store", [(self.size, self.timeouts.join)], self.timeouts.join,
                               "opening the mesh's store on rank 0")
        self._call("join_mesh", [(rank, self.size, address, self.parallel, self.timeouts.join)
                                 for rank in range(self.size)],
                   self.timeouts.load, f"building the mesh of {self.size} worker(s) ({self.parallel}) at {address}")

    def form(self, layout: tuple[int, ...]) -> None:
        """Join the first `len(layout)` workers into one process group (kept while the layout stays the same). With
        a parallel layout the mesh stays: the first `len(layout)` replicas (all their ranks) merge over its seed
        axis."""
        if self.layout == tuple(layout):
            return
        if self.parallel:
            if len(layout) > self.replicas:
                raise UsageError(f"{self.name}: layout {list(layout)} needs {len(layout)} replicas; the group holds "
                                 f"{self.replicas} ({self.size} workers, {self.ranks_per_replica} per replica)")
            k = self.ranks_per_replica
            self._call("join", [(list(layout), index // k, None, self.timeouts.join, self.timeouts.collective)
                                for index in range(len(layout) * k)],
                       self.timeouts.control, f"seeds {list(layout)} over {len(layout)} replica(s)")
            self.layout = tuple(layout)
            return
        self._call("leave", [()] * self.size, self.timeouts.control, "leaving the previous group")
        self.layout = None
        address = None
        if len(layout) > 1:
            [address] = self._call("open_store", [(len(layout), self.timeouts.join)], self.timeouts.join,
                                   "opening the group's store on rank 0")
        self._call("join", [(list(layout), rank, address, self.timeouts.join, self.timeouts.collective)
                            for rank in range(len(layout))],
                   self.timeouts.join + 30, f"rendezvous of {len(layout)} worker(s) at {address}")
        self.layout = tuple(layout)

    # -- work ----------------------------------------------------------------------------------------------------
    def run(self, unit) -> list:
        """Run a resolved, loaded `Unit` (explicit layout, task read) in lockstep; members in member order. Raises on
        any failure (see `_collect`)."""
        self.form(unit.layout)
        k = self.ranks_per_replica  # every rank of a replica runs its seeds; its first rank's members are kept
        slices = [seeds for seeds in split_seeds(list(unit.seeds), unit.layout) for _ in range(k)]
        parts = self._call("run", [(unit.task, unit.settings, seeds, unit.ensemble, unit.x0, unit.program)
                                   for seeds in slices],
                           self.timeouts.unit, f"unit {unit.task.task_id} seeds {list(unit.seeds)}")
        return [member for part in parts[::k] for member in part]

    def execute(self, fn, *args, members: int | None = None, timeout: float | None = None, **kwargs) -> list:
        """`fn(worker, *args, **kwargs)` on the first `members` workers (all by default), in lockstep."""
        return self._call("execute", [(fn, *args)] * (members or self.size), timeout or self.timeouts.unit,
                          getattr(fn, "__name__", "execute"), **kwargs)

    def _call(self, method: str, args: list[tuple], timeout: float, what: str, *, at: list[int] | None = None,
              **kwargs) -> list:
        """The one way to call workers: `method(*args[k], **kwargs)` on the k-th worker called - the first `len(args)`
        workers, or those at indices `at` - collected and classified by `_collect`. Raises `GroupFailed` on a group
        that was shut down."""
        if not self.alive:
            raise GroupFailed(f"{self.name}: {what}: this group was shut down (a failure tore it down, or its owner "
                              f"did); build a new one")
        at = list(range(len(args))) if at is None else list(at)
        if len(at) != len(args) or any(not 0 <= index < len(self.workers) for index in at):
            raise UsageError(f"{self.name}: {what}: workers {at} asked for with {len(args)} argument list(s); "
                             f"the group has {self.size}")
        try:
            refs = [getattr(self.workers[index], method).remote(*worker_args, **kwargs)
                    for index, worker_args in zip(at, args)]
        except BaseException:
            self.shutdown()
            raise
        return self._collect(refs, timeout, what)

    def _collect(self, refs, timeout: float, what: str) -> list:
        """Wait for every member; a deterministic error on every member is re-raised, anything else breaks the group.

        A deterministic failure (a `CosRayError` that is not a `ClusterError`, e.g. a bad layer range or NaN in a
        merged state) reaches every member together, so the group is still in step and is kept. A member that died,
        stalled or failed alone leaves the others blocked in a collective: the group is torn down. A deterministic
        failure of some members only (the others waited for them in a collective) still fails the unit with that
        reason - running it again would meet it again - but the group, out of step, is torn down.
        """
        try:
            outcomes = self._outcomes(refs, timeout, what)
        except BaseException:
            self.shutdown()
            raise
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if not errors:
            return outcomes
        deterministic = [err for err in errors if _deterministic(err)]
        if len(deterministic) == len(outcomes) and len({type(err) for err in deterministic}) == 1:
            deterministic[0].failed_members = len(outcomes)  # decided together: every member failed the same way
            raise deterministic[0]
        self.shutdown()
        if deterministic:
            deterministic[0].failed_members = len(deterministic)
            raise deterministic[0]
        reasons = "; ".join(f"worker {i}: {_short(outcome)}" for i, outcome in enumerate(outcomes)
                            if isinstance(outcome, BaseException))
        raise GroupFailed(f"{self.name}: {what} failed ({reasons}); the group was torn down; {CHECK}") from errors[0]

    def _outcomes(self, refs, timeout: float, what: str) -> list:
        """Each ref's value or exception, waiting at most `timeout` in all; stops early when a member fails alone.

        A member that fails with anything but a deterministic error would leave the others blocked in a collective
        until its timeout: they are not waited for (their outcome is a `GroupFailed` saying so). After a deterministic
        error the others are given `timeouts.control` more to fail the same way (they do at once when the failure was
        collective, like NaN in a merged state); who has not answered by then is not waited for either.
        """
        import time

        import ray

        deadline = time.monotonic() + timeout
        outcomes = {}
        pending = list(refs)
        while pending:
            remaining = deadline - time.monotonic()
            ready, pending = ray.wait(pending, num_returns=1, timeout=max(remaining, 0))
            if not ready and any(_deterministic(outcome) for outcome in outcomes.values()):
                for other in pending:
                    outcomes[other] = GroupFailed("not waited for: another member failed deterministically")
                break
            if not ready:
                raise waits.WaitTimeout(
                    f"{self.name}: {what}: {len(pending)} of {len(refs)} worker(s) did not answer within {timeout:g} s "
                    f"(stalled or dead); the group was torn down; {CHECK}"
                )
            for ref in ready:
                try:
                    outcomes[ref] = ray.get(ref, timeout=0)
                except BaseException as err:  # noqa: BLE001 - RayTaskError, ActorDiedError, ...
                    outcomes[ref] = _cause(err)
                    if not _deterministic(outcomes[ref]):
                        for other in pending:
                            outcomes[other] = GroupFailed("not waited for: another member failed first")
                        pending = []
                    else:
                        deadline = min(deadline, time.monotonic() + self.timeouts.control)
        return [outcomes[ref] for ref in refs]

    # -- teardown ------------------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Kill the workers and free their placement (idempotent). Their models and process group go with them."""
        import ray
        from ray.util.placement_group import remove_placement_group

        for worker in self.workers:
            try:
                ray.kill(worker, no_restart=True)
            except Exception:  # noqa: BLE001 - already dead
                pass
        self.workers = []
        self.layout = None
        if getattr(self, "placement", None) is not None:
            try:
                remove_placement_group(self.placement)
            except Exception:  # noqa: BLE001 - already removed
                pass
            self.placement = None

    @property
    def alive(self) -> bool:
        return bool(self.workers)


def _deterministic(err: BaseException) -> bool:
    """A failure that the same unit would meet again on any group: the user's input or the model, not the cluster."""
    return isinstance(err, CosRayError) and not isinstance(err, ClusterError)


def _cause(err: BaseException) -> BaseException:
    """The exception raised inside the worker (Ray wraps it in a RayTaskError), else `err` itself."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"[:300]
