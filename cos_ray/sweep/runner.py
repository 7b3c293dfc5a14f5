"""`cos-ray submit SPEC` without a cluster address: the sweep's units on worker groups of this Ray cluster.

Units already finished in the store are skipped; failed ones run again. Each unit is written when it ends - media,
then its steps rows, then its runs rows, whose commit marks it done - so killing the sweep at any moment leaves a
store that the next submission resumes, and a reader never sees half a unit. Infrastructure failures (a dead or
stalled worker) are retried on a fresh group up to `retries` times; deterministic ones (bad input, NaN in a merged
state) fail the unit at once. When no unit is left to run, the store is compacted.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from queue import SimpleQueue

from cos_ray.cluster.waits import Timeouts
from cos_ray.errors import CosRayError, UsageError

EXIT_INTERRUPTED = 130
WAKE_S = 0.5  # how often the loop waiting on units looks at `stop_requested`

# Set by `request_stop` (SIGINT, SIGTERM). The KeyboardInterrupt it also raises can land where Python swallows it
# (a finalizer, logging's at-fork lock release while Ray forks), so the loops below check the flag as well.
stop_requested = threading.Event()


def request_stop(signum=None, frame=None) -> None:
    """Signal handler: stop the sweep as on Ctrl-C (finished units stay, the sweep is marked interrupted)."""
    stop_requested.set()
    raise KeyboardInterrupt


def _stop_if_requested() -> None:
    if stop_requested.is_set():
        raise KeyboardInterrupt


@dataclass
class SweepReport:
    """What a submission did: counts over the spec's units, and the sweep's final status."""

    sweep_id: str
    store: str
    units: int
    skipped: int
    done: int = 0
    failed: int = 0
    status: str = "running"  # done | failed | interrupted

    @property
    def exit_code(self) -> int:
        return {"done": 0, "interrupted": EXIT_INTERRUPTED}.get(self.status, 1)


def run_sweep(spec_path: str, out: str | None = None, *, retries: int = 2, timeouts: Timeouts = Timeouts(),
              progress: bool = True, compact: bool = True, limits=None, fork: bool = True) -> SweepReport:
    """Run every unit of the spec not yet finished in the store; returns the report (raises only before starting).
    `limits`: cos_ray.spec.limits.Limits (`--max-runs`), checked before anything is expanded or written. `fork`:
    units sharing a prefix run it once (`cos_ray.spec.forks`); False (`--no-fork`): every unit from noise."""
    from cos_ray.spec.expand import expand, sweep_id
    from cos_ray.spec.load import load_spec
    from cos_ray.store.location import Store
    from cos_ray.store.status import resume_status

    if retries < 0:
        raise UsageError(f"--retries: expected >= 0, got {retries}")
    spec = load_spec(spec_path, limits) if limits is not None else load_spec(spec_path)
    units = expand(spec)
    store = Store(spec.store_uri(out))
    finished, set_aside = resume_status(store)  # damaged files set aside: their units are not finished
    for note in set_aside:
        print(f"store damaged: {note}", file=sys.stderr)
    finished &= {unit.unit_id for unit in units}
    todo = [unit for unit in units if unit.unit_id not in finished]
    report = SweepReport(sweep_id(spec, units), store.uri, len(units), len(finished))
    sweep = _SweepRecord(store, spec, units, report)
    from cos_ray.store.disk_full import ending_on_full_disk

    # a file as the store is refused first; a full disk is one line (DiskFull), the row ending "interrupted"
    with ending_on_full_disk(store, lambda: sweep.write("interrupted", finished=True)):
        sweep.write("running")
        try:
            if todo:
                run_units(spec, store, todo, report, retries, timeouts, progress, fork=fork)
        except KeyboardInterrupt:
            sweep.write("interrupted", finished=True)
            raise
        status = "failed" if report.failed else "done"
        if compact and not report.failed:
            _compact_quietly(store)
        sweep.write(status, finished=True)
    return report


def _compact_quietly(store) -> None:
    """The end of a sweep compacts the store; a compaction that fails is reported and never fails the sweep (its
    rows are committed; `cos-ray compact` can run later)."""
    from cos_ray.store.compact import compact_store

    try:
        compact_store(store)
    except Exception as err:  # noqa: BLE001 - the sweep's status is written whatever happens here
        print(f"warning: compacting {store.uri} failed ({type(err).__name__}: {str(err).splitlines()[0]}); "
              f"run `cos-ray compact --out {store.uri}` later", file=sys.stderr)


class _SweepRecord:
    """The sweeps table's row of this submission, rewritten as it progresses."""

    def __init__(self, store, spec, units, report: SweepReport):
        self.store, self.spec, self.units, self.report = store, spec, units, report
        self.started = datetime.now(timezone.utc)

    def write(self, status: str, finished: bool = False) -> None:
        from cos_ray.store.rows import sweep_row
        from cos_ray.store.write import write_sweep

        self.report.status = status
        source = Path(self.spec.source)
        source = str(source.resolve()) if source.is_file() else self.spec.source  # `cos-ray verify` reads it back
        write_sweep(self.store, sweep_row(
            self.report.sweep_id, self.spec.name, source, self.spec.data, self.spec.model.name,
            [unit.unit_id for unit in self.units], status, done=self.report.skipped + self.report.done,
            failed=self.report.failed, started_at=self.started,
            finished_at=datetime.now(timezone.utc) if finished else None))


def run_units(spec, store, todo, report: SweepReport, retries: int = 2, timeouts: Timeouts = Timeouts(),
              show: bool = True, fork: bool = True) -> None:
    """Run the units, writing each as it ends: trivial baselines here, model units on the coordinator's groups.

    Ctrl-C kills the workers (no worker group is started when every unit is a trivial baseline)."""
    from cos_ray.provenance import sweep_provenance
    from cos_ray.sweep.progress import SweepProgress

    shared = sweep_provenance(spec)
    progress = SweepProgress(todo, report.skipped, enabled=show)

    def record(outcome) -> None:
        ok, error = _record(store, outcome, report.sweep_id, shared)
        report.done += ok
        report.failed += not ok
        progress.unit_ended(outcome.unit, ok, outcome.seconds, error)

    model_units = [unit for unit in todo if unit.runs_model]
    progress.start()
    try:
        for unit in todo:
            if not unit.runs_model:
                _stop_if_requested()
                progress.unit_started(unit)
                record(_run_trivial(unit))
        if model_units:
            _run_on_groups(spec, model_units, retries, timeouts, progress, record, fork=fork)
    finally:
        progress.finish()


def _run_on_groups(spec, units, retries: int, timeouts: Timeouts, progress, record, fork: bool = True) -> None:
    """Feed model units to the worker groups, as many at once as there are groups; `record` each as it ends.

    Units that share a prefix go as one fork group to one group, a call per branch (`cos_ray.cluster.forked`); the units
    left to run are planned again at each submission, so a resumed sweep forks what is left."""
    from cos_ray.cluster.connect import connect, fit_groups
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.cluster.forked import run_forked
    from cos_ray.spec.forks import fork_groups

    connect()
    model = spec.model
    actors = model.workers * model.ranks_per_replica()  # a worker of a parallel layout is K actors
    groups = min(len(units), model.groups or fit_groups(actors, model.gpus_per_worker))
    progress.note(f"starting {groups} worker group(s) of {model.workers} worker(s), each loading {model.name}")
    coordinator = Coordinator(model.name, (1,) * model.workers, groups=groups, lora=model.lora, offload=model.offload,
                              experts=model.experts_files(),
                              gpus_per_worker=model.gpus_per_worker, timeouts=timeouts, parallel=model.parallel,
                              on_notice=progress.note)
    pool = ThreadPoolExecutor(groups, thread_name_prefix="cos-ray-unit")
    try:
        pending = {}
        queue = fork_groups(units, fork=fork)
        ended_units = SimpleQueue()  # UnitOutcomes, put by the pool's threads as each unit ends; recorded here
        while queue or pending:
            while queue and len(pending) < groups:  # submit as groups free up, so `running` counts real work
                group = queue.pop(0)
                pending[pool.submit(run_forked, coordinator, group, retries, ended_units.put)] = group
                for unit in group.units:
                    progress.unit_started(unit)
            ended, _ = wait(pending, timeout=WAKE_S, return_when=FIRST_COMPLETED)
            _stop_if_requested()
            for future in ended:
                pending.pop(future)
                future.result()  # run_forked never raises; its outcomes went through `ended_units`
            while not ended_units.empty():
                record(ended_units.get())
    finally:
        coordinator.shutdown()  # on Ctrl-C too: killing the workers unblocks the threads waiting on them
        pool.shutdown(wait=False, cancel_futures=True)


def _run_trivial(unit):
    """A trivial baseline's `UnitOutcome`, made here (`cos_ray.sweep.trivial`); never raises."""
    from cos_ray.cluster.outcome import Attempt, UnitOutcome
    from cos_ray.sweep.trivial import run_trivial

    outcome = UnitOutcome(unit)
    started = datetime.now(timezone.utc)
    try:
        outcome.members, outcome.workers = run_trivial(unit)
    except Exception as err:  # noqa: BLE001 - reported as the unit's failure
        outcome.error = err
    outcome.attempts.append(Attempt(1, started, datetime.now(timezone.utc), outcome.error))
    return outcome


def _record(store, outcome, sweep_id: str, shared: dict) -> tuple[bool, str | None]:
    """Write the unit's rows (its results, or one failed row per member); (ok, error).

    `shared`: the provenance columns of every run of this submission."""
    from cos_ray.store.rows import failed_rows
    from cos_ray.store.write import write_unit
    from cos_ray.sweep.results import unit_results

    unit, error = outcome.unit, outcome.error
    if error is None:
        try:
            runs, steps, layers = unit_results(store, outcome, sweep_id, unit.settings.fps, shared)
        except CosRayError as err:  # e.g. a task whose references cannot be read: the unit fails, with why
            error = err
        else:
            write_unit(store, unit.unit_id, runs, steps, layers)
            return True, None
    message = f"{type(error).__name__}: {error}"
    write_unit(store, unit.unit_id, failed_rows(unit, sweep_id, message, duration_s=outcome.seconds,
                                                started_at=outcome.started, finished_at=outcome.finished, **shared))
    return False, message

