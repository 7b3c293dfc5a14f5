"""What running a unit produced, from the worker to the store's rows: one `UnitOutcome`, carrying its `Attempt`s and
the `WorkerInfo` of every worker that ran it.

One type all the way: the coordinator's retry loop fills it, a trivial baseline made on the driver fills it too, and
the sweep turns it into rows (`cos_ray.sweep.results.unit_results`) without repacking it. Plain dataclasses, no Ray,
no torch: the driver and the store's side read them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass(frozen=True)
class WorkerInfo:
    """Where one worker runs and what it holds (for logs, errors, run records and the runs table's columns)."""

    node: str  # the node's IP address (or this host's name for the driver)
    pid: int
    device: str  # "cpu", "cuda", "none" (a trivial baseline made without a model)
    gpus: tuple[str, ...] = ()  # GPU ids Ray gave this worker
    shard: tuple[str, ...] = ()  # devices each expert is sharded over (several GPUs), else empty
    threads: int | None = None  # torch's CPU threads
    versions: dict = field(default_factory=dict, compare=False)  # software versions (cos_ray.provenance)
    model: dict | None = None  # name, family, lora, device, dtype, offload of the model it holds; None: none

    @property
    def address(self) -> str:
        """`node:pid`, the runs table's `worker` column."""
        return f"{self.node}:{self.pid}"

    def as_dict(self) -> dict:
        """JSON-able (run records beside generated videos)."""
        return dataclasses.asdict(self)


@dataclass
class Attempt:
    """One try of a unit on one group (retries: a fresh group each)."""

    number: int  # 1, 2, ...
    started: datetime
    finished: datetime
    error: BaseException | None = None  # None: the attempt succeeded

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


@dataclass
class UnitOutcome:
    """One unit's members (in member order), or the error that failed it, and every attempt that decided it."""

    unit: object  # cos_ray.spec.unit.Unit, with its layout resolved (unless resolving it failed)
    members: list | None = None  # MemberResult (or TrivialMember) per member; only from an attempt that fully succeeded
    error: BaseException | None = None
    workers: list[WorkerInfo] = field(default_factory=list)  # the workers that ran it, in rank order
    attempts: list[Attempt] = field(default_factory=list)  # the last one decides

    @property
    def ok(self) -> bool:
        return self.error is None and self.members is not None

    @property
    def started(self) -> datetime:
        """When the deciding (last) attempt started."""
        return self.attempts[-1].started if self.attempts else _now()

    @property
    def finished(self) -> datetime:
        return self.attempts[-1].finished if self.attempts else self.started

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()

    def worker_of(self, member: int) -> WorkerInfo | None:
        """The worker that ran member `member`: members are split over workers in rank order by the unit's layout
        (one worker that ran them all - the driver of a trivial baseline - ran every member)."""
        if len(self.workers) == 1:
            return self.workers[0]
        bound = 0
        for rank, count in enumerate(getattr(self.unit, "layout", None) or ()):
            bound += count
            if member < bound:
                return self.workers[rank] if rank < len(self.workers) else None
        return None


def _now() -> datetime:
    return datetime.now(timezone.utc)
