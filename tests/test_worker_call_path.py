"""The one worker call path on the session's Ray cluster: every call to a group's workers - load, form, run, execute -
meets the same failure classification.

- A worker killed while idle between a one-worker unit and a two-worker unit is found when the second unit re-forms
  the process group (not by the run itself): the group is torn down, the unit runs again on a fresh group and its rows
  equal those of the undisturbed run - nothing lost, nothing duplicated.
- A worker raising `InputError` fails its unit once: no retry, no teardown, one failed row per member.
- A group that was shut down refuses every call instead of answering `[]`.

The units come from a real spec (`expand`: a baseline on one worker, a 2-member ensemble on two) and their rows are
written by the sweep's own writer, so what is compared is what a sweep would store.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from cos_ray.cluster import faults
from cos_ray.cluster.errors import GroupFailed
from cos_ray.cluster.waits import Timeouts

pytestmark = pytest.mark.timeout(300)

TIMEOUTS = Timeouts(start=120, load=240, join=60, collective=15, unit=150, control=30)
SPEC = """\
name: call-path
model: {name: tiny, workers: 2, groups: 1}
tasks: {generate: {family: maze, n: 1, seed: 0}}
seeds: [3]
sampler: {steps: 4, frames: 5}
methods:
  - baseline
  - ensemble: {size: 2, layers: 20-29, steps: 0-1, merge: update}
"""
VOLATILE = {"started_at", "finished_at", "duration_s", "worker"}  # when and in which process: not the results


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from cos_ray.spec.load import load_spec

    path = tmp_path_factory.mktemp("call-path") / "call-path.yaml"
    path.write_text(SPEC)
    return load_spec(str(path))


@pytest.fixture(scope="module")
def units(spec):
    """(the one-worker baseline unit, the two-worker ensemble unit), as expansion made them."""
    from cos_ray.spec.expand import expand

    by_method = {unit.method: unit for unit in expand(spec)}
    one, two = by_method["baseline"], by_method["ensemble"]
    assert (one.layout, two.layout) == ((1,), (1, 1))
    return one, two


@pytest.fixture(scope="module")
def coordinator(ray_cluster, tiny_model, spec):  # tiny_model first: the preset is written once, before workers read it
    from cos_ray.cluster.coordinator import Coordinator

    coordinator = Coordinator(spec.model.name, (1,) * spec.model.workers, device="cpu", timeouts=TIMEOUTS)
    yield coordinator
    coordinator.shutdown()


def record(spec, store, outcome) -> tuple[bool, str | None]:
    """The sweep's writer: the unit's rows, or one failed row per member."""
    from cos_ray.provenance import sweep_provenance
    from cos_ray.sweep.runner import _record

    return _record(store, outcome, "call-path-test", sweep_provenance(spec))


def rows(store, table: str) -> list[dict]:
    from cos_ray.store.query import run_sql

    order = "run_id, step" if table == "steps" else "run_id"
    found = run_sql(store, f"select * from {table} order by {order}").to_pylist()
    return [{key: value for key, value in row.items() if key not in VOLATILE} for row in found]


def pids(coordinator) -> list[int]:
    return [info.pid for info in coordinator.groups[0].describe()]


@pytest.fixture(scope="module")
def undisturbed(coordinator, units, spec, tmp_path_factory):
    """Both units run with no fault, and the store their rows make: the reference of the disturbed run."""
    from cos_ray.store.location import Store

    store = Store(str(tmp_path_factory.mktemp("undisturbed") / "results"))
    outcomes = [coordinator.run_with_retries(unit, retries=0) for unit in units]
    for outcome in outcomes:
        assert outcome.ok and len(outcome.attempts) == 1, outcome.error
        assert record(spec, store, outcome) == (True, None)
    return outcomes, store


def test_workers_describe_themselves_as_typed_records(coordinator, undisturbed):
    from cos_ray.cluster.outcome import WorkerInfo

    info = coordinator.groups[0].info
    assert len(info) == 2 and all(isinstance(worker, WorkerInfo) for worker in info)
    assert [worker.pid for worker in info] == pids(coordinator) and len(set(pids(coordinator))) == 2
    assert {worker.device for worker in info} == {"cpu"} and {worker.model["name"] for worker in info} == {"tiny"}
    two = undisturbed[0][1]
    assert [two.worker_of(member).pid for member in (0, 1)] == [worker.pid for worker in info]


def test_a_worker_killed_while_idle_is_found_by_the_next_layout_and_the_unit_retried(coordinator, units, spec,
                                                                                     undisturbed, tmp_path):
    """Unit one runs on worker 0 alone; worker 1, idle, is SIGKILLed; unit two needs both workers."""
    from cos_ray.store.location import Store

    expected, reference = undisturbed
    one, two = units
    store = Store(str(tmp_path / "results"))
    before, built = pids(coordinator), coordinator.built

    first = coordinator.run_with_retries(one, retries=2)
    assert first.ok and len(first.attempts) == 1, first.error
    os.kill(before[1], signal.SIGKILL)  # a crash / the OOM killer while the worker waits for work
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(before[1]):
        time.sleep(0.05)
    second = coordinator.run_with_retries(two, retries=2)

    assert second.ok, second.error
    assert len(second.attempts) == 2
    failed, retried = second.attempts
    message = str(failed.error)
    assert isinstance(failed.error, GroupFailed), message
    assert "leaving the previous group" in message and "the group was torn down" in message, message
    assert retried.error is None and failed.finished <= retried.started
    assert coordinator.built == built + 1 and not set(pids(coordinator)) & set(before)  # a fresh group
    assert [info.pid for info in second.workers] == pids(coordinator)

    for outcome, reference_outcome in zip((first, second), expected):
        assert [m.seed for m in outcome.members] == [m.seed for m in reference_outcome.members]
        for member, same in zip(outcome.members, reference_outcome.members):
            assert np.array_equal(member.video, same.video)
            assert np.array_equal(member.final_latent, same.final_latent)
        assert record(spec, store, outcome) == (True, None)
    runs = rows(store, "runs")
    assert [row["run_id"] for row in runs] == sorted(one.run_ids + two.run_ids)  # nothing lost, nothing duplicated
    assert {row["status"] for row in runs} == {"ok"}
    assert runs == rows(reference, "runs")
    assert rows(store, "steps") == rows(reference, "steps")
    assert len(rows(store, "steps")) == 3 * 4  # three runs of four steps


def test_an_input_error_in_a_worker_fails_the_unit_once_without_retry_or_teardown(coordinator, units, spec,
                                                                                    undisturbed, tmp_path):
    from cos_ray.errors import InputError
    from cos_ray.store.location import Store

    one, two = units
    before, built = pids(coordinator), coordinator.built
    store = Store(str(tmp_path / "results"))
    for unit, workers in ((one, [0]), (two, [0, 1])):  # every worker of the unit meets the bad input
        for index in workers:
            faults.inject(coordinator.groups[0], index, faults.RaiseAt(step=0, message="unreadable first frame",
                                                                       kind="input"))
        start = time.monotonic()
        outcome = coordinator.run_with_retries(unit, retries=2)
        assert time.monotonic() - start < TIMEOUTS.collective  # decided at once: nobody waited for a timeout
        assert not outcome.ok and outcome.members is None
        assert isinstance(outcome.error, InputError) and "unreadable first frame" in str(outcome.error)
        assert len(outcome.attempts) == 1 and outcome.error.failed_members == len(workers)
        # The group is kept: same workers, no rebuild.
        assert coordinator.groups[0].alive and pids(coordinator) == before and coordinator.built == built
        faults.clear(coordinator.groups[0])
        ok, error = record(spec, store, outcome)
        assert not ok and error.startswith("InputError: unreadable first frame")
    runs = rows(store, "runs")
    assert [row["run_id"] for row in runs] == sorted(one.run_ids + two.run_ids)
    assert {row["status"] for row in runs} == {"failed"}
    again = coordinator.run_with_retries(one, retries=0)  # without the fault the kept group runs it as before
    assert again.ok and np.array_equal(again.members[0].video, undisturbed[0][0].members[0].video)


def test_a_shut_down_group_refuses_every_call(ray_cluster):
    from cos_ray.cluster.group import WorkerGroup

    group = WorkerGroup(1, None, timeouts=TIMEOUTS, name="shut-down-test")
    pid = lambda worker: __import__("os").getpid()  # noqa: E731 - pickled by value (the workers cannot import tests)
    assert group.execute(pid, timeout=30) == [group.info[0].pid]
    group.shutdown()
    assert not group.alive
    for call in (lambda: group.execute(pid, timeout=30), group.describe, lambda: group.form((1,))):
        with pytest.raises(GroupFailed, match="shut-down-test: .*this group was shut down"):
            call()


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a SIGKILLed worker stays a zombie until the raylet reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
