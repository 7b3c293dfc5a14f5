"""Ensembles that survive failures, on the session's Ray cluster: a killed worker, a stalled one, NaN, exhausted retries.

One coordinator (one group of two workers, tiny preset, 2-member `update` ensemble, 4 steps) serves the module; its
faults come from `cos_ray.cluster.faults`, installed on one worker and kept until that worker dies. The tests run in
file order: the NaN test keeps the group, each later test breaks it and the coordinator builds a fresh one.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from cos_ray.cluster import faults
from cos_ray.cluster.errors import GroupFailed
from cos_ray.cluster.retry import RetriesExhausted
from cos_ray.cluster.waits import Timeouts
from cos_ray.interventions.configs import EnsembleConfig
from cos_ray.spec.unit import Unit

pytestmark = pytest.mark.timeout(300)

COLLECTIVE = 15.0  # s a member may wait in one all-reduce; the stalled worker is found after this
TIMEOUTS = Timeouts(start=120, load=240, join=60, collective=COLLECTIVE, unit=150, control=30)
SEEDS = (31, 32)
ENSEMBLE = EnsembleConfig(size=2, merge="update", steps="0-1")  # layers 20-29 merged at steps 0 and 1
REBUILT = {"fault": None}  # a fault injected into worker 1 of every group the coordinator builds from now on


def inject_on_build(group) -> None:
    if REBUILT["fault"] is not None:
        faults.inject(group, 1, REBUILT["fault"])


@pytest.fixture(scope="module")
def coordinator(ray_cluster, tiny_model):  # tiny_model first: the preset is written once, before the workers read it
    from cos_ray.cluster.coordinator import Coordinator

    coordinator = Coordinator("tiny", (1, 1), device="cpu", timeouts=TIMEOUTS, on_build=inject_on_build)
    yield coordinator
    coordinator.shutdown()


@pytest.fixture(scope="module")
def unit(task):
    from cos_ray.sampler import default_settings

    settings = default_settings("tiny-a14b").replace(steps=4, frames=5)
    return Unit(task, settings, SEEDS, ENSEMBLE, layout=(1, 1))


@pytest.fixture(scope="module")
def undisturbed(coordinator, unit):
    """The unit run once with no fault: what every retried attempt must reproduce bit for bit."""
    outcome = coordinator.run_with_retries(unit, retries=0)
    assert outcome.ok and len(outcome.attempts) == 1, outcome.error
    return outcome.members


def pids(coordinator) -> list[int]:
    return [info.pid for info in coordinator.groups[0].describe()]


def assert_same_members(members, expected) -> None:
    assert [m.seed for m in members] == list(SEEDS) and [m.member for m in members] == [0, 1]
    for member, reference in zip(members, expected):
        assert np.array_equal(member.video, reference.video)
        assert np.array_equal(member.final_latent, reference.final_latent)
        assert member.steps == reference.steps


def test_nan_in_a_merged_state_fails_every_member_at_once_without_retry(coordinator, unit, undisturbed):
    """Worker 1's block 19 outputs NaN at step 0: the update merged at block 20 is NaN on both members."""
    from cos_ray.interventions.cross_seed import NonFiniteMergeError

    before, built = pids(coordinator), coordinator.built
    faults.inject(coordinator.groups[0], 1, faults.NaNAt(step=0, point="blocks.19"))
    start = time.monotonic()
    outcome = coordinator.run_with_retries(unit, retries=2)
    assert time.monotonic() - start < COLLECTIVE  # decided together: nobody waited for a timeout
    assert not outcome.ok and outcome.members is None
    assert isinstance(outcome.error, NonFiniteMergeError)
    message = str(outcome.error)
    assert "NaN or inf in the merged hidden state at high.blocks.20, step 0" in message and "not retried" in message
    assert outcome.error.failed_members == 2  # every member failed, with the same reason
    assert len(outcome.attempts) == 1  # no retry
    # The group is still in step and kept: same workers, no rebuild; without the fault it runs the unit as before.
    assert coordinator.groups[0].alive and pids(coordinator) == before and coordinator.built == built
    faults.clear(coordinator.groups[0])
    again = coordinator.run_with_retries(unit, retries=0)
    assert again.ok, again.error
    assert_same_members(again.members, undisturbed)


def test_a_worker_killed_mid_unit_is_retried_on_a_fresh_group_with_the_same_result(coordinator, unit, undisturbed,
                                                                                  tmp_path):
    """Worker 1 signals from inside step 1 of the denoising loop and pauses; the test SIGKILLs its process."""
    before, built = pids(coordinator), coordinator.built
    flag = tmp_path / "in-the-loop"
    faults.inject(coordinator.groups[0], 1, faults.PauseAt(step=1, seconds=120, signal=str(flag)))
    killed = []

    def kill_when_in_the_loop():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if flag.exists() and flag.read_text().strip():
                pid = int(flag.read_text())
                os.kill(pid, signal.SIGKILL)  # a crash / the OOM killer: no cleanup, no exception in the worker
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_in_the_loop, daemon=True)
    killer.start()
    outcome = coordinator.run_with_retries(unit, retries=2)
    killer.join(5)
    assert killed == [before[1]]  # worker 1 of the first group, in its denoising loop
    assert outcome.ok, outcome.error
    assert len(outcome.attempts) == 2
    first, second = outcome.attempts
    assert isinstance(first.error, GroupFailed) and "the group was torn down" in str(first.error)
    assert second.error is None and first.finished <= second.started
    # The retry ran from step 0 on a fresh group (new workers), and only its members were reported.
    assert coordinator.built == built + 1 and not set(pids(coordinator)) & set(before)
    assert len(outcome.members) == len(SEEDS)
    assert_same_members(outcome.members, undisturbed)
    assert [info.pid for info in outcome.workers] == pids(coordinator)


def test_a_stalled_worker_is_found_within_the_collective_timeout_and_the_unit_retried(coordinator, unit,
                                                                                      undisturbed):
    """Worker 1 sleeps at step 1 and never reaches the all-reduce; worker 0 gives up after the collective timeout."""
    before, built = pids(coordinator), coordinator.built
    faults.inject(coordinator.groups[0], 1, faults.PauseAt(step=1, seconds=300))
    outcome = coordinator.run_with_retries(unit, retries=2)
    assert outcome.ok, outcome.error
    assert len(outcome.attempts) == 2
    first = outcome.attempts[0]
    message = str(first.error)
    assert isinstance(first.error, GroupFailed), message
    assert "worker 0: CollectiveError" in message and "all-reduce" in message and "died or stalled" in message
    assert first.seconds < COLLECTIVE + 30  # found by the collective's timeout, far before the unit's (150 s)
    assert coordinator.built == built + 1 and not set(pids(coordinator)) & set(before)
    assert_same_members(outcome.members, undisturbed)


def test_a_unit_failing_on_every_attempt_is_reported_failed_with_its_reason(coordinator, unit):
    """Worker 1 of every group (this one and the rebuilt one) crashes at step 1: 1 retry, then the unit fails."""
    built = coordinator.built
    REBUILT["fault"] = faults.ExitAt(step=1)
    try:
        faults.inject(coordinator.groups[0], 1, REBUILT["fault"])
        outcome = coordinator.run_with_retries(unit, retries=1)
    finally:
        REBUILT["fault"] = None
    assert not outcome.ok and outcome.members is None
    assert len(outcome.attempts) == 2 and all(isinstance(a.error, GroupFailed) for a in outcome.attempts)
    assert isinstance(outcome.error, RetriesExhausted) and outcome.error.attempts == 2
    message = str(outcome.error)
    assert "failed 2 time(s), each on a fresh group" in message and "worker 1:" in message, message
    assert "earlier: attempt 1: GroupFailed" in message, message
    assert coordinator.built == built + 1
    assert not coordinator.groups[0].alive  # torn down after the last attempt; the next unit builds a fresh one


def test_a_deterministic_failure_of_one_member_is_not_retried_nor_waited_for(ray_cluster):
    """Bad input seen by one member only fails the unit with its reason (not a retryable GroupFailed): the other member,
    blocked in a collective, is waited for `timeouts.control` at most, and the group (out of step) is torn down.
    Plain Ray tasks stand for the members (no model, no rebuild)."""
    from cos_ray.cluster.group import WorkerGroup
    from cos_ray.cluster.retry import retryable
    from cos_ray.errors import UsageError

    @ray_cluster.remote(num_cpus=0.1, max_retries=0)
    def bad_input():
        from cos_ray.errors import UsageError

        raise UsageError("bad input on this member")

    @ray_cluster.remote(num_cpus=0.1, max_retries=0)
    def blocked_in_a_collective():
        time.sleep(120)

    group = object.__new__(WorkerGroup)  # only the waiting logic is under test
    group.name, group.workers, group.placement, group.layout = "fake", [], None, (1, 1)
    group.timeouts = Timeouts(control=3)
    refs = [blocked_in_a_collective.remote(), bad_input.remote()]
    start = time.monotonic()
    with pytest.raises(UsageError, match="bad input on this member") as failure:
        group._collect(refs, 60, "fake unit")
    assert time.monotonic() - start < 3 + 20
    assert failure.value.failed_members == 1 and not retryable(failure.value)
    assert group.layout is None  # shut down
    ray_cluster.cancel(refs[0], force=True)
