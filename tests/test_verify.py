"""`cos-ray verify`: a rerun of finished units reproduces every stored row, and an altered row is reported."""

from __future__ import annotations

import shutil

import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql

pytestmark = pytest.mark.timeout(400)


def test_an_untouched_store_verifies(small_sweep, tmp_path):
    _, reference, report = small_sweep
    out = tmp_path / "results"
    shutil.copytree(reference, out)

    result = CliRunner().invoke(main, ["verify", "small", "--out", str(out), "--sample", "2"])

    assert result.exit_code == 0, result.output
    assert "verified 2 unit(s): every row reproduced" in result.output


def test_an_altered_unit_is_reported(small_sweep, tmp_path):
    from deltalake import DeltaTable

    _, reference, report = small_sweep
    out = tmp_path / "results"
    shutil.copytree(reference, out)
    store = Store(out)
    units = run_sql(store, "select unit_id, method from runs group by all order by all").to_pylist()
    altered = next(row["unit_id"] for row in units if row["method"] == "ensemble")
    untouched = next(row["unit_id"] for row in units if row["method"] == "baseline")
    before = run_sql(store, f"select score from runs where unit_id = '{altered}' order by run_id").column("score")
    DeltaTable(str(out / "runs")).update(updates={"score": "score + 0.25"}, predicate=f"unit_id = '{altered}'")
    after = run_sql(store, f"select score from runs where unit_id = '{altered}' order by run_id").column("score")
    assert after.to_pylist() == pc.add(before, 0.25).to_pylist()  # the tampering took

    result = CliRunner().invoke(main, ["verify", report.sweep_id, "--out", str(out), "--unit", altered,
                                       "--unit", untouched])

    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("unit ")]
    assert lines and all(line.startswith(f"unit {altered} runs {altered}-") and " score: " in line for line in lines)
    assert len(lines) == 2  # both members' scores, nothing else
    assert f"verified 2 unit(s): 1 differ ({altered})" in result.output


def test_unknown_sweeps_and_units_are_named(small_sweep, tmp_path):
    _, reference, _ = small_sweep
    result = CliRunner().invoke(main, ["verify", "nosuch", "--out", str(reference)])
    assert result.exit_code == 2 and "sweep 'nosuch': not in store" in result.output and "small (" in result.output
    result = CliRunner().invoke(main, ["verify", "small", "--out", str(reference), "--unit", "0123456789abcdef"])
    assert result.exit_code == 2 and "--unit: 0123456789abcdef not among the finished units" in result.output
