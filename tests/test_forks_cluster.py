"""Forked sweeps on the session's Ray cluster: the forked tables equal the `--no-fork` tables; a fault inside one
branch fails that branch's unit and leaves its siblings' members intact; a driver killed mid-fork and resubmitted
gives the uninterrupted tables. The ensemble units' members are on two workers: they fork together, in lockstep."""

from __future__ import annotations

import signal
import sys

import numpy as np
import pytest

from cos_ray.store.location import Store
from cos_ray.store.query import run_sql
from test_forks import FailInEditedRun, write_spec
from test_submit import assert_resumes_to, finished_parts, rows, stop_after_units, submit_process

pytestmark = pytest.mark.timeout(400)

SPEC = """\
name: forks-cluster
model: {name: tiny, workers: 2, groups: 1}   # ensembles span both workers (all-reduce); single runs use one
tasks: {generate: {family: maze, n: 1, seed: 0}}
seeds: [0]
sampler: {steps: 5, frames: 5}
methods:
  - baseline
  - noise_at_step: {step: [2, 3]}
  - ensemble: {size: 2, layers: 20-29, steps: {grid: [0-1, 0-2]}, merge: update}
probes:
  x0: {every: 2}
"""


@pytest.fixture(scope="module")
def forked_and_unforked(ray_cluster, tmp_path_factory):
    """The same sweep run forked and with --no-fork: (spec path, forked store, unforked store, forked report)."""
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path_factory.mktemp("forks-cluster")
    spec = write_spec(folder / "spec", SPEC)
    forked = run_sweep(str(spec), str(folder / "forked"), progress=False)
    unforked = run_sweep(str(spec), str(folder / "unforked"), progress=False, fork=False)
    assert forked.status == unforked.status == "done" and forked.done == unforked.done == 5
    return spec, folder / "forked", folder / "unforked", forked


def test_forked_rows_equal_the_no_fork_rows(forked_and_unforked):
    _, forked, unforked, _ = forked_and_unforked
    for table in ("runs", "steps"):
        assert rows(forked, table) == rows(unforked, table)
    methods = run_sql(Store(forked), "select method, count(*) n from runs group by all order by 1").to_pylist()
    assert methods == [{"method": "baseline", "n": 1}, {"method": "ensemble", "n": 4},
                       {"method": "noise_at_step", "n": 2}]
    for store in (forked, unforked):  # each ensemble's two members ran on two workers
        spread = run_sql(Store(store), "select unit_id, count(distinct worker) n from runs where method = 'ensemble' "
                                       "group by all").to_pylist()
        assert [row["n"] for row in spread] == [2, 2]


def test_a_fault_inside_one_branch_leaves_its_siblings_whole(ray_cluster, tiny_model, tmp_path):
    import ray

    from cos_ray.cluster import faults
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.cluster.forked import run_forked
    from cos_ray.probes.program import run_program
    from cos_ray.spec.expand import expand
    from cos_ray.spec.forks import fork_groups
    from cos_ray.spec.load import load_spec

    ray.cloudpickle.register_pickle_by_value(sys.modules[FailInEditedRun.__module__])  # tests are not installed
    units = expand(load_spec(str(write_spec(tmp_path, SPEC))))
    group = next(group for group in fork_groups(units) if group.units[0].method == "baseline")
    assert [branch.start for branch in group.branches] == [0, 2, 3]  # clean, noise at 2, noise at 3
    ensembles = next(group for group in fork_groups(units) if group.units[0].method == "ensemble")
    assert [branch.start for branch in ensembles.branches] == [0, 2]  # merged over 0-1, then 0-2 from step 2
    fault = FailInEditedRun(step=2)
    with Coordinator("tiny", (1, 1), groups=1, on_build=lambda g: faults.inject(g, 0, fault)) as co:
        outcomes = run_forked(co, group, retries=0)
        merged = run_forked(co, ensembles, retries=0)  # two workers, members forked together (all-reduce)
        assert co.built == 1  # a deterministic failure keeps the group; nothing fell back to a fresh group
    for outcome in merged:
        assert outcome.ok, outcome.error
        unit = outcome.unit.loaded()
        reference = run_program(tiny_model, unit.task, unit.settings, list(unit.seeds), None, ensemble=unit.ensemble,
                                x0=unit.x0)  # in process, one batch: last bits differ from the all-reduce
        for member, expected in zip(outcome.members, reference):
            assert [row["step"] for row in member.steps] == [row["step"] for row in expected.steps]
            assert np.allclose(member.final_latent, expected.final_latent.numpy(), atol=1e-5, rtol=0)
    by_start = {branch.start: outcome for branch, outcome in zip(group.branches, outcomes)}
    assert "fault drill at step 2" in str(by_start[2].error) and by_start[2].members is None
    for start in (0, 3):  # the clean trunk, and noise at 3 resumed from its snapshot: as run alone, from noise
        outcome = by_start[start]
        assert outcome.ok, outcome.error
        unit = outcome.unit.loaded()
        if start == 3:  # its reference: the same unit run in this process without the fault
            reference = run_program(tiny_model, unit.task, unit.settings, list(unit.seeds), unit.program, x0=unit.x0)
        else:
            reference = run_program(tiny_model, unit.task, unit.settings, list(unit.seeds), None, x0=unit.x0)
        (member,), (expected,) = outcome.members, reference
        assert member.steps == expected.steps
        assert np.allclose(member.final_latent, expected.final_latent.numpy(), atol=1e-5, rtol=0)


def test_a_driver_killed_mid_fork_resumes_to_the_uninterrupted_tables(forked_and_unforked, ray_cluster, tmp_path):
    spec, reference, _, report = forked_and_unforked
    out = tmp_path / "results"
    killed = submit_process(spec, out, ray_cluster)
    stop_after_units(killed, out, 1, signal.SIGKILL)  # a fork group committed; the driver dies in the other
    assert killed.returncode == -signal.SIGKILL
    before = finished_parts(out)
    assert 1 <= before < report.units
    assert_resumes_to(reference, spec, out, ray_cluster, before, report.units)
