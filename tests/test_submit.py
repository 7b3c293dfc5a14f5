"""`cos-ray submit` on the embedded path: a real sweep, killed and interrupted mid-way, resumed, extended, retried.

The reference is the `small_sweep` fixture: the same spec run once, uninterrupted, in this process. Sweeps killed
here run as `cos-ray submit --local` subprocesses on the session's Ray cluster, so killing the driver kills its
workers with it, as Ctrl-C or a lost node would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_small_sweep
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql
from cos_ray.store.schema import VOLATILE

pytestmark = pytest.mark.timeout(400)


def rows(store_path, table: str) -> list[dict]:
    """A table's rows in a stable order, without the columns that legitimately differ between submissions."""
    key = "run_id" if table == "runs" else "run_id, step"
    result = run_sql(Store(store_path), f"select * from {table} order by {key}").to_pylist()
    skip = {*VOLATILE[table], "cos_ray_commit"}  # the checkout's commit may move on while a test runs
    return [{k: v for k, v in row.items() if k not in skip} for row in result]


def finished_parts(store_path) -> int:
    """Units whose runs rows are committed (read by delta-rs from the runs table's log)."""
    folder = Path(store_path) / "runs"
    if not (folder / "_delta_log").is_dir():
        return 0
    from deltalake import DeltaTable

    rows = DeltaTable(str(folder)).to_pyarrow_dataset().to_table(columns=["unit_id"])
    return len(set(rows.column("unit_id").to_pylist()))


def assert_resumes_to(reference, spec, out, ray_cluster, before: int, units: int) -> None:
    """Resubmitting `spec` into `out` (`before` of its `units` done) runs the rest and ends with `reference`'s tables."""
    final = submit_process(spec, out, ray_cluster)
    output, _ = final.communicate(timeout=300)
    assert final.returncode == 0, output
    assert f"{before} already done, {units - before} ran, 0 failed" in output
    for table in ("runs", "steps"):
        assert rows(out, table) == rows(reference, table)


def submit_process(spec, out, ray_cluster) -> subprocess.Popen:
    """`cos-ray submit SPEC --out OUT` driving the session's cluster (as a Ray Job's driver would, with --local)."""
    env = dict(os.environ, RAY_ADDRESS=ray_cluster.get_runtime_context().gcs_address, RAY_AUTH_MODE="disabled",
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "cos_ray.cli", "submit", str(spec), "--out", str(out), "--local"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def stop_after_units(process: subprocess.Popen, out, units: int, sig: int, timeout: float = 180) -> str:
    """Wait until `units` units are in the store, then send `sig`; the process's output."""
    deadline = time.monotonic() + timeout
    while finished_parts(out) < units:
        if process.poll() is not None:
            raise AssertionError(f"the sweep ended before it was stopped:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no {units} unit(s) finished within {timeout} s:\n{process.stdout.read()}")
        time.sleep(0.2)
    os.killpg(process.pid, sig)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return output


def test_interrupted_and_killed_sweeps_resume_to_the_uninterrupted_tables(small_sweep, ray_cluster, tmp_path):
    _, reference, report = small_sweep
    spec = write_small_sweep(tmp_path / "spec")
    out = tmp_path / "results"

    interrupted = submit_process(spec, out, ray_cluster)
    output = stop_after_units(interrupted, out, 1, signal.SIGINT)
    assert interrupted.returncode == 130, output
    assert "submit again to resume" in output
    sweeps = run_sql(Store(out), "select status, done from sweeps").to_pylist()
    assert sweeps[0]["status"] == "interrupted" and 1 <= sweeps[0]["done"] < report.units

    killed = submit_process(spec, out, ray_cluster)
    stop_after_units(killed, out, sweeps[0]["done"] + 1, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    before = finished_parts(out)
    members = run_sql(Store(out), "select unit_id, method, count(*) n from runs group by all").to_pylist()
    assert len(members) == before and all(row["n"] == (2 if row["method"] == "ensemble" else 1) for row in members)
    assert before < report.units

    assert_resumes_to(reference, spec, out, ray_cluster, before, report.units)
    assert run_sql(Store(out), "select status, done, failed from sweeps").to_pylist() == [
        {"status": "done", "done": report.units, "failed": 0}]
    videos = run_sql(Store(out), "select video, filmstrip from runs").to_pylist()
    assert all((out / row["video"]).is_file() and (out / row["filmstrip"]).is_file() for row in videos)


def test_an_extended_spec_runs_only_the_new_units(small_sweep, tmp_path):
    from cos_ray.sweep.runner import run_sweep

    _, reference, report = small_sweep
    out = tmp_path / "results"
    shutil.copytree(reference, out)
    before = {row["run_id"]: row["finished_at"] for row in run_sql(Store(out), "select run_id, finished_at from runs").to_pylist()}
    extended = write_small_sweep(tmp_path / "spec", seeds="[0, 1, 2]")

    again = run_sweep(str(extended), str(out), progress=False)

    assert (again.skipped, again.done, again.failed) == (report.units, 4, 0)  # 2 tasks x (baseline, ensemble)
    after = {row["run_id"]: row["finished_at"] for row in run_sql(Store(out), "select run_id, finished_at from runs").to_pylist()}
    assert {run: after[run] for run in before} == before  # the old runs were not touched
    assert len(after) == len(before) + 2 * (1 + 2)
    seeds = run_sql(Store(out), "select distinct seed from runs where method = 'baseline' order by 1").column(0)
    assert seeds.to_pylist() == [0, 1, 2]


def test_a_failed_unit_is_retried_on_resubmission_and_replaces_its_rows(small_sweep, tmp_path):
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.store.rows import failed_rows
    from cos_ray.store.write import write_unit
    from cos_ray.sweep.runner import run_sweep

    spec_path, reference, report = small_sweep
    out = tmp_path / "results"
    shutil.copytree(reference, out)
    ensemble = next(unit for unit in expand(load_spec(spec_path)) if unit.method == "ensemble")
    from deltalake import DeltaTable

    for table in ("runs", "steps"):  # the unit as its failed attempt left it: failed runs rows, no steps
        DeltaTable(str(out / table)).delete(f"unit_id = '{ensemble.unit_id}'")
    write_unit(Store(out), ensemble.unit_id, failed_rows(ensemble, report.sweep_id, "WaitTimeout: injected"))

    again = run_sweep(str(spec_path), str(out), progress=False)

    assert (again.skipped, again.done, again.failed) == (report.units - 1, 1, 0)
    for table in ("runs", "steps"):
        assert rows(out, table) == rows(reference, table)


def test_dry_run_and_bad_specs_write_nothing(tmp_path):
    spec = write_small_sweep(tmp_path / "spec")
    out = tmp_path / "results"
    dry = subprocess.run([sys.executable, "-m", "cos_ray.cli", "submit", str(spec), "--out", str(out), "--dry-run"],
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "units: 8 (0 already in the store, 8 to run)" in dry.stdout and not out.exists()

    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.read_text().replace("layers: 20-29", "layers: 20-45"))
    result = subprocess.run([sys.executable, "-m", "cos_ray.cli", "submit", str(bad), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "methods[1].ensemble.layers: '20-45' reaches layer 45, out of range 0-39" in result.stderr
    assert not out.exists()
