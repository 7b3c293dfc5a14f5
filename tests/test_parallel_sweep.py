"""A sweep on a parallel layout writes the in-process rows: the small sweep (tests/conftest.py) run by 2 workers of
Ulysses-2 + FSDP2 (4 actors, one 2 x 2 mesh: each 2-seed ensemble merged over the seed axis) against the same sweep
run by one worker (`small_sweep`: an ensemble's seeds as one batch, the very batch of the in-process reference)."""

from __future__ import annotations

import math

import pytest
from conftest import SMALL_SWEEP
from store_processes import delta

pytestmark = pytest.mark.timeout(600)

TOLERANCE = 1e-4  # x̂0 statistics of float32 runs whose batching and sharding differ in the last bits


@pytest.fixture(scope="module")
def parallel_sweep(ray_cluster, tmp_path_factory):
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path_factory.mktemp("parallel-sweep")
    spec = folder / "small.yaml"
    spec.write_text(SMALL_SWEEP.replace("SEEDS", "[0, 1]").replace(
        "model: {name: tiny, workers: 1, groups: 2}",
        "model: {name: tiny, workers: 2, groups: 1, parallel: {ulysses: 2, fsdp: true}}"))
    report = run_sweep(str(spec), str(folder / "results"), progress=False)
    assert report.status == "done", report
    return folder / "results"


def by_run(rows, keys):
    return {tuple(str(row[key]) for key in keys): row for row in rows}


def close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE * max(1.0, abs(b))
    return a == b


def test_a_sweep_on_a_2x2_mesh_writes_the_in_process_rows(parallel_sweep, small_sweep):
    _, reference_store, _ = small_sweep
    keys = ("task_id", "method", "seeds", "seed")  # ensembles started at 0 and at 1 share seed 1
    got, expected = by_run(delta(parallel_sweep, "runs"), keys), by_run(delta(reference_store, "runs"), keys)
    assert sorted(got) == sorted(expected) and len(got) == 12
    for key, row in got.items():
        reference = expected[key]
        assert row["status"] == reference["status"] == "ok", key
        for column in ("member", "params", "score", "score_overall", "lock_in_step", "flips", "commit_step"):
            assert close(row[column], reference[column]), (key, column, row[column], reference[column])
    run_key = {row["run_id"]: key for key, row in got.items()}
    reference_key = {row["run_id"]: key for key, row in expected.items()}
    steps = by_run([{**row, "run": run_key[row["run_id"]]} for row in delta(parallel_sweep, "steps")], ("run", "step"))
    reference_steps = by_run([{**row, "run": reference_key[row["run_id"]]} for row in delta(reference_store, "steps")],
                             ("run", "step"))
    assert sorted(steps) == sorted(reference_steps)
    for key, row in steps.items():
        for column in ("x0_mean", "x0_std", "x0_change", "score"):
            assert close(row[column], reference_steps[key][column]), (key, column)
