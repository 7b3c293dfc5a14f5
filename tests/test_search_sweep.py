"""A search in a real sweep on the session's Ray cluster (`cos-ray submit`): the kept candidate's stored rows are the
baseline run's of its seed, the pruned ones are stored as pruned with their stop step, the `answers` view names the
kept one, and a sweep whose driver is killed mid-way resumes to the uninterrupted tables (the pattern of
tests/test_submit.py)."""

from __future__ import annotations

import signal

import pytest

from cos_ray.store.location import Store
from cos_ray.store.query import run_sql
from cos_ray.store.schema import VOLATILE
from test_submit import finished_parts, stop_after_units, submit_process

pytestmark = pytest.mark.timeout(400)

SPEC = """\
name: search-sweep
model: {name: tiny-reasoner, workers: 1, groups: 2}
tasks: {generate: {family: maze, n: 1, seed: 3, params: {cells: 4, size: 64, frames: 9}}}
seeds: "0-2"
sampler: {steps: 4}
methods:
  - search: {candidates: 3, select_at: 1, keep: 1, verifier: task, starts: [0]}
  - baseline
probes:
  x0: {every: 2, decode: true}
"""
ORDER = {"runs": "run_id", "steps": "run_id, step", "layers": "run_id, step, kind, layer"}


def write_spec(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "search.yaml").write_text(SPEC)
    return folder / "search.yaml"


def table(store, name: str) -> list[dict]:
    skip = {*VOLATILE[name], "cos_ray_commit"}
    result = run_sql(Store(store), f"select * from {name} order by {ORDER[name]}").to_pylist()
    return [{k: v for k, v in row.items() if k not in skip} for row in result]


@pytest.fixture(scope="module")
def reference(ray_cluster, tmp_path_factory):
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path_factory.mktemp("search-sweep")
    store = folder / "results"
    report = run_sweep(str(write_spec(folder)), str(store), progress=False)
    assert report.status == "done" and report.units == 4, report
    return store


def test_the_stored_search_keeps_the_baseline_rows_and_records_the_pruned(reference):
    runs = run_sql(Store(reference), "select * from runs order by run_id").to_pylist()
    search = [row for row in runs if row["method"] == "search"]
    assert sorted(row["seed"] for row in search) == [0, 1, 2]
    (kept,) = [row for row in search if row["status"] == "ok"]
    pruned = [row for row in search if row["status"] == "pruned"]
    assert all(row["stop_step"] == 1 and row["video"] is None for row in pruned) and len(pruned) == 2
    (base,) = [row for row in runs if row["method"] == "baseline" and row["seed"] == kept["seed"]]
    for column in ("score", "score_overall", "scores", "lock_in_step", "flips", "commit_step", "forward_passes"):
        assert kept[column] == base[column], column
    assert (reference / kept["video"]).read_bytes() == (reference / base["video"]).read_bytes()
    def steps_of(run_id):
        return run_sql(Store(reference), "select * exclude (run_id, unit_id, x0_spread) from steps "
                                         f"where run_id = '{run_id}' order by step").to_pylist()

    assert steps_of(kept["run_id"]) == steps_of(base["run_id"]) and len(steps_of(base["run_id"])) == 4
    assert sum(row["forward_passes"] for row in search) == 2 * (3 * 2 + 2)  # 3 candidates x 2 steps + 2, CFG
    answers = run_sql(Store(reference), "select run_id from answers where method = 'search'").to_pylist()
    assert answers == [{"run_id": kept["run_id"]}]


def test_a_search_sweep_killed_mid_way_resumes_to_the_uninterrupted_tables(reference, ray_cluster, tmp_path):
    spec = write_spec(tmp_path / "spec")
    out = tmp_path / "results"
    killed = submit_process(spec, out, ray_cluster)
    stop_after_units(killed, out, 1, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    before = finished_parts(out)
    assert 1 <= before < 4
    final = submit_process(spec, out, ray_cluster)
    output, _ = final.communicate(timeout=300)
    assert final.returncode == 0, output
    assert f"{before} already done, {4 - before} ran, 0 failed" in output
    for name in ORDER:
        assert table(out, name) == table(reference, name), name


def test_a_search_spread_over_two_workers_chooses_as_one_process_does(reference, ray_cluster, tmp_path):
    """Candidates 0-1 on one worker, 2 on the other (layout 2+1): the verifier's scores are gathered over the seed
    axis, so the same candidate is kept and every candidate's rows are those of the one-worker search."""
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path / "spec"
    folder.mkdir()
    (folder / "search.yaml").write_text(SPEC.replace("workers: 1, groups: 2", "workers: 2, groups: 1")
                                        .replace("  - baseline\n", ""))
    report = run_sweep(str(folder / "search.yaml"), str(tmp_path / "results"), progress=False)
    assert report.status == "done" and report.units == 1, report
    columns = "seed, status, stop_step, score, lock_in_step, commit_step, forward_passes"
    query = f"select {columns}, layout from runs where method = 'search' order by seed"
    spread = run_sql(Store(tmp_path / "results"), query).to_pylist()
    alone = run_sql(Store(reference), query).to_pylist()
    assert {row.pop("layout") for row in spread} == {"2+1"} and {row.pop("layout") for row in alone} == {"3"}
    assert spread == alone
    judged = "select r.seed, l.value, l.layer_index from layers l join runs r using (run_id) where l.kind = 'search' " \
             "order by r.seed"
    assert run_sql(Store(tmp_path / "results"), judged).to_pylist() == run_sql(Store(reference), judged).to_pylist()
