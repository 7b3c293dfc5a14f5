"""The distributed SeedGroup on plain tensors across Ray workers: sum, gather, uneven counts, timeouts."""

from __future__ import annotations

import time

import pytest
import torch

from cos_ray.cluster.errors import GroupFailed, WaitTimeout
from cos_ray.cluster.waits import Timeouts

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def group(ray_cluster):
    """Three workers holding no model (only the collective is under test)."""
    from cos_ray.cluster.group import WorkerGroup

    group = WorkerGroup(3, None, timeouts=Timeouts(start=120, join=30, collective=3, unit=60, control=30),
                        name="collective-test")
    yield group
    group.shutdown()


def exchange(group, op, locals_):
    """`op` on each member's local tensor, all at once (they meet in the collective); results per member."""
    return group._call("exchange", [(op, local) for local in locals_], 60, f"test {op}")


def batches(layout, shape=(4, 5)):
    """Member k's seeds hold the value k+1 (+ a position ramp): `# (local_seeds, *shape)` per worker."""
    ramp = torch.arange(float(torch.Size(shape).numel())).reshape(shape)
    members = [ramp + member + 1 for member in range(sum(layout))]
    out, start = [], 0
    for count in layout:
        out.append(torch.stack(members[start : start + count]))
        start += count
    return members, out


@pytest.mark.parametrize("layout", [(1, 1, 1), (2, 1), (1, 2)])
def test_sum_and_gather_over_uneven_counts(group, layout):
    group.form(layout)
    members, locals_ = batches(layout)
    expected_sum = torch.stack(members).sum(dim=0)  # (4, 5)
    for result in exchange(group, "sum", locals_):
        assert torch.equal(result, expected_sum)  # small integers: exact in any summation order
    for result in exchange(group, "gather", locals_):
        assert torch.equal(result, torch.stack(members))  # (total, 4, 5), member order
    offsets = group.execute(lambda worker: (worker.seeds.total, worker.seeds.offset), members=len(layout), timeout=30)
    assert offsets == [(3, sum(layout[:rank])) for rank in range(len(layout))]


def test_group_reforms_with_other_members(group):
    group.form((1, 1))
    _, locals_ = batches((1, 1))
    assert [float(r[0, 0]) for r in exchange(group, "sum", locals_)] == [3.0, 3.0]
    group.form((1, 1, 1))
    _, locals_ = batches((1, 1, 1))
    assert [float(r[0, 0]) for r in exchange(group, "sum", locals_)] == [6.0, 6.0, 6.0]


def test_a_stalled_call_times_out_with_a_clear_error(ray_cluster):
    from cos_ray.cluster import waits

    @ray_cluster.remote(num_cpus=0.1, max_retries=0)
    def stall():
        time.sleep(60)

    ref = stall.remote()
    with pytest.raises(WaitTimeout, match=r"stalled test call: no answer within 0.5 s; check `ray status`"):
        waits.get(ref, 0.5, "stalled test call")
    ray_cluster.cancel(ref, force=True)


def test_a_member_missing_from_the_collective_times_out_and_breaks_the_group(group):
    """Runs last: it tears the group down. Rank 1 never calls the all-reduce; rank 0 gives up after 3 s."""
    group.form((1, 1))
    start = time.monotonic()
    with pytest.raises(GroupFailed) as failure:
        group.execute(lambda worker: worker.exchange("sum", torch.ones(1, 8)), members=1, timeout=60)
    elapsed = time.monotonic() - start
    message = str(failure.value)
    assert "all-reduce of (8,) across the seed group (rank 0 of 2" in message, message
    assert "ray status" in message and "the group was torn down" in message
    assert elapsed < 30
    assert not group.alive
