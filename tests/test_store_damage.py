"""A damaged store says so: unreadable data files and log entries are named (table, version, file), never trusted
by a resume (their units rerun), and a driver killed mid-commit leaves tables its resubmission completes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from deltalake import DeltaTable

from cos_ray.cli import main
from store_processes import comparable, delta, expected_run_ids, finish, reference, submit, write_spec  # noqa: F401 (reference: a fixture)

pytestmark = pytest.mark.timeout(600)


def data_file_of(out: Path, table: str, unit_id: str | None = None) -> str:
    """The table-relative path of the data file holding `unit_id`'s rows (from the log's statistics), or the only
    file of a compacted table."""
    import pyarrow as pa

    actions = pa.table(DeltaTable(str(out / table)).get_add_actions(flatten=True)).to_pylist()
    if unit_id is None:
        assert len(actions) == 1
        return actions[0]["path"]
    return next(a["path"] for a in actions if a["min.unit_id"] == unit_id == a["max.unit_id"])


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def sql(out: Path, query: str):
    return CliRunner().invoke(main, ["sql", query, "--out", str(out), "--format", "csv"])


def test_a_corrupted_data_file_is_named_and_its_units_rerun(reference, tmp_path):
    spec, uninterrupted = reference
    out = tmp_path / "results"
    shutil.copytree(uninterrupted, out)
    damaged = data_file_of(out, "runs")  # the sweep ended compacted: one file holds every run
    truncate(out / "runs" / damaged)
    version = DeltaTable(str(out / "runs")).version()

    result = sql(out, "select count(*) from runs")
    assert result.exit_code == 1
    assert f"table runs version {version}: runs/{damaged} is unreadable" in result.output
    checked = CliRunner().invoke(main, ["store", "check", "--out", str(out)])
    assert checked.exit_code == 1 and f"runs/{damaged}" in checked.output and "lost: 16 row(s)" in checked.output

    code, output = finish(submit(spec, out))
    assert code == 0, output
    assert "0 already done, 16 ran" in output and f"runs/{damaged}" in output  # nothing trusted, the damage named
    assert comparable(out, "runs") == comparable(uninterrupted, "runs")
    assert (out / "_damaged").is_dir()
    assert CliRunner().invoke(main, ["store", "check", "--out", str(out)]).exit_code == 0


def test_a_corrupted_log_entry_is_named_and_the_units_after_it_rerun(reference, tmp_path):
    spec, uninterrupted = reference
    out = tmp_path / "results"
    shutil.copytree(uninterrupted, out)
    log = out / "runs" / "_delta_log"
    broken = log / f"{5:020d}.json"  # the commit of the 5th unit to finish
    broken.write_text(broken.read_text()[:40] + "\x00garbage")

    result = sql(out, "select count(*) from runs")
    assert result.exit_code == 1
    assert f"table runs version 5: runs/_delta_log/{broken.name} is unreadable" in result.output
    checked = CliRunner().invoke(main, ["store", "check", "--out", str(out)])
    assert checked.exit_code == 1 and broken.name in checked.output

    code, output = finish(submit(spec, out))
    assert code == 0, output
    assert "4 already done, 12 ran" in output  # the units committed before version 5 stay done, none after it
    runs = [row["run_id"] for row in delta(out, "runs", ["run_id"])]
    assert sorted(runs) == sorted(expected_run_ids(spec))
    assert comparable(out, "runs") == comparable(uninterrupted, "runs")


def test_units_whose_steps_are_unreadable_are_not_done(tmp_path):
    from test_store import write_fake_unit

    from cos_ray.store.location import Store
    from cos_ray.store.status import resume_status

    store = Store(tmp_path)
    for index in range(4):
        write_fake_unit(store, f"u{index}", steps=3)
    damaged = data_file_of(tmp_path, "steps", "u2")
    (tmp_path / "steps" / damaged).write_bytes(b"not parquet at all")
    result = sql(tmp_path, "select count(*) from steps")
    assert result.exit_code == 1 and f"steps/{damaged}" in result.output and "unit u2" in result.output

    finished, notes = resume_status(store)
    assert finished == {"u0", "u1", "u3"}  # u2's runs rows are ok, but its steps are lost: it runs again
    assert any(f"steps/{damaged}" in note for note in notes)
    assert sorted(row["unit_id"] for row in delta(tmp_path, "steps", ["unit_id"])) == ["u0"] * 3 + ["u1"] * 3 + [
        "u3"] * 3
    write_fake_unit(store, "u2", steps=3)  # the rerun
    assert sql(tmp_path, "select count(*) n, count(distinct run_id || step) d from steps").output.splitlines()[
        1] == "12,12"


def test_a_driver_killed_mid_commit_resumes_to_the_uninterrupted_tables(reference, tmp_path):
    spec, uninterrupted = reference
    out = tmp_path / "results"
    driver = submit(spec, out)
    runs = out / "runs"
    deadline = time.monotonic() + 240
    while len(list(runs.glob("*.parquet"))) < 6:  # a data file is written just before the commit naming it
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()[0]
        time.sleep(0.002)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(30)
    committed = len(delta(out, "runs", ["run_id"]))
    assert committed < 16

    code, output = finish(submit(spec, out))
    assert code == 0, output
    assert f"{committed} already done, {16 - committed} ran" in output
    for table in ("runs", "steps"):
        assert comparable(out, table) == comparable(uninterrupted, table)
    sweeps = delta(out, "sweeps", ["status"])
    assert [row["status"] for row in sweeps] == ["done"]
    assert json.loads(json.dumps(comparable(out, "runs"), default=str))  # rows are plain values


def test_a_compaction_failing_at_the_end_of_a_sweep_never_leaves_it_running(tmp_path, monkeypatch, capsys):
    from cos_ray.store import compact
    from cos_ray.sweep.runner import run_sweep

    def broken(store, *args, **kwargs):
        raise OSError("disk quota exceeded")

    monkeypatch.setattr(compact, "compact_store", broken)
    spec = write_spec(tmp_path)
    report = run_sweep(str(spec), str(tmp_path / "results"), progress=False)
    assert (report.status, report.done, report.failed) == ("done", 16, 0)
    assert [row["status"] for row in delta(tmp_path / "results", "sweeps", ["status"])] == ["done"]
    err = capsys.readouterr().err
    assert "compacting" in err and "disk quota exceeded" in err and "cos-ray compact" in err
