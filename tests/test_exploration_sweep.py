"""Exploration columns from a real sweep, recounted with numpy from an independent in-process run of the same unit;
a store written before the columns existed still reads (the new columns as null) and takes rows that have them."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyarrow as pa
import pytest

from cos_ray.store.location import Store
from cos_ray.store.query import run_sql


def _rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


@pytest.mark.timeout(300)
def test_x0_spread_and_distance_to_final_equal_a_numpy_recount(small_sweep, tiny_model):
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.tasks.routes import read_candidates
    from cos_ray.tasks.scorers.frames import prepare

    spec_path, store, _ = small_sweep
    unit = next(unit for unit in expand(load_spec(spec_path)) if unit.method == "ensemble")
    task = unit.task.load()
    members = run_trajectory(tiny_model, task, unit.settings, list(unit.seeds), ensemble=unit.ensemble,
                             x0=dataclasses.replace(unit.x0, keep_latents=True))
    x0 = [{step: latent.numpy() for step, latent in member.x0_latents.items()} for member in members]
    recorded = sorted(x0[0])
    assert recorded == [0, 2, 3]  # x0 every 2 steps, and the last

    rows = run_sql(Store(store), "select run_id, step, x0_spread, x0_to_final, candidates, answer_in_candidates "
                                 f"from steps where unit_id = '{unit.unit_id}' order by run_id, step").to_pylist()
    by_run = {run_id: {row["step"]: row for row in group}
              for run_id, group in itertools.groupby(rows, key=lambda row: row["run_id"])}
    assert len(by_run) == 2
    for index, member in enumerate(members):
        stored = by_run[f"{unit.unit_id}-{index}"]
        for step in range(4):
            row = stored[step]
            if step not in recorded:
                assert row["x0_spread"] is None and row["x0_to_final"] is None
                continue
            pairs = [_rms(a[step], b[step]) for a, b in itertools.combinations(x0, 2)]
            assert row["x0_spread"] == pytest.approx(np.mean(pairs), rel=1e-4, abs=1e-6)
            assert row["x0_to_final"] == pytest.approx(_rms(x0[index][step], member.final_latent.numpy()),
                                                       rel=1e-4, abs=1e-6)
            routes = read_candidates(prepare(member.filmstrip[recorded.index(step)], task_size(task)), "maze",
                                     task.meta())
            assert row["candidates"] == len(routes)
        assert stored[3]["x0_to_final"] == 0.0  # x̂0 at the last step is the final latent
    assert by_run[f"{unit.unit_id}-0"][0]["x0_spread"] > 0  # the members do differ (update merge keeps them apart)

    baseline = run_sql(Store(store), "select s.x0_spread, r.commit_step from steps s join runs r using (run_id) "
                                     "where r.method = 'baseline'").to_pylist()
    assert baseline and all(row["x0_spread"] is None for row in baseline)  # one member: no spread
    commits = run_sql(Store(store), "select commit_step from runs where method <> 'first_frame'").column(0).to_pylist()
    assert all(step in (0, 2, 3) for step in commits)  # a decoded step of each run (mazes have a route reader)


def task_size(task):
    from cos_ray.tasks.scorers.frames import read_rgb

    return read_rgb(task.image_path).shape[:2]


def test_a_store_without_the_exploration_columns_reads_them_as_null_and_takes_new_rows(tmp_path):
    from deltalake import write_deltalake

    from cos_ray.store.write import commit_rows

    store = Store(str(tmp_path / "old"))
    old = pa.table({"run_id": ["u-0", "u-0"], "unit_id": ["u", "u"], "step": pa.array([0, 1], pa.int32()),
                    "timestep": [1000.0, 500.0], "sigma": [1.0, 0.5], "expert": ["high", "low"],
                    "x0_mean": [0.1, 0.2], "x0_std": [1.0, 0.9], "x0_change": [None, 0.3], "score": [None, 0.5]})
    (tmp_path / "old").mkdir()
    write_deltalake(store.table_uri("steps"), old, mode="error")  # the steps table as stores before this change hold it
    sql = "select step, x0_spread, x0_to_final, candidates, answer_in_candidates from steps order by run_id, step"
    assert run_sql(store, sql).to_pylist() == [
        {"step": 0, "x0_spread": None, "x0_to_final": None, "candidates": None, "answer_in_candidates": None},
        {"step": 1, "x0_spread": None, "x0_to_final": None, "candidates": None, "answer_in_candidates": None}]

    commit_rows(store, "steps", [{"run_id": "v-0", "unit_id": "v", "step": 0, "x0_spread": 0.25, "x0_to_final": 0.5,
                                  "candidates": 2, "answer_in_candidates": True}], scope="v")
    rows = run_sql(store, sql).to_pylist()
    assert rows[-1] == {"step": 0, "x0_spread": 0.25, "x0_to_final": 0.5, "candidates": 2, "answer_in_candidates": True}
    assert rows[:2] == [
        {"step": 0, "x0_spread": None, "x0_to_final": None, "candidates": None, "answer_in_candidates": None},
        {"step": 1, "x0_spread": None, "x0_to_final": None, "candidates": None, "answer_in_candidates": None}]

    runs = pa.table({"run_id": ["u-0"], "unit_id": ["u"], "member": pa.array([0], pa.int32()), "status": ["ok"],
                     "lock_in_step": pa.array([3], pa.int32()), "flips": pa.array([1], pa.int32()),
                     "score_reason": pa.array([None], pa.string())})
    write_deltalake(store.table_uri("runs"), runs, mode="error")  # runs without commit_step (it sits mid-schema now)
    commit_rows(store, "runs", [{"run_id": "v-0", "unit_id": "v", "member": 0, "status": "ok", "lock_in_step": 2,
                                 "flips": 0, "commit_step": 1, "score_reason": "x"}], scope="v")
    assert run_sql(store, "select run_id, lock_in_step, commit_step, score_reason from runs order by run_id").to_pylist() == [
        {"run_id": "u-0", "lock_in_step": 3, "commit_step": None, "score_reason": None},
        {"run_id": "v-0", "lock_in_step": 2, "commit_step": 1, "score_reason": "x"}]


def test_the_exploration_queries_in_the_docs_run_on_a_sweep_store(small_sweep):
    """docs/probes.md "Exploration per step" and docs/paper-figures.md "Distillation": every `cos-ray sql` runs."""
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    sections = [(docs / "probes.md").read_text().split("## Exploration per step")[1],
                (docs / "paper-figures.md").read_text().split("## Distillation")[1].split("\n## ")[0]]
    queries = [query for text in sections for query in re.findall(r'cos-ray sql "(.*?)" --out', text, re.DOTALL)]
    assert len(queries) == 5
    _, store, _ = small_sweep
    for query in queries:
        table = run_sql(Store(store), query)
        assert table.num_rows > 0, query
