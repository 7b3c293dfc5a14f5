"""`cos-ray sql` answers in table, csv and json; an empty store is a clear message; only SELECTs run."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.store.location import Store
from cos_ray.store.write import write_unit


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "results")
    for index, (method, score) in enumerate([("baseline", 0.25), ("baseline", 0.75), ("ensemble", 1.0)]):
        uid = f"u{index}"
        write_unit(store, uid, [{"unit_id": uid, "run_id": f"{uid}-0", "method": method, "score": score,
                                 "status": "ok"}],
                   [{"run_id": f"{uid}-0", "unit_id": uid, "step": step, "score": score * step / 2} for step in range(3)])
    return store


QUERY = "select method, avg(score) as mean, count(*) as n from runs group by 1 order by 1"


def sql(*args):
    return CliRunner().invoke(main, ["sql", *args])


def test_table_format(store):
    result = sql(QUERY, "--out", store.root)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["method", "mean", "n"]
    assert lines[2].split() == ["baseline", "0.5", "2"] and lines[3].split() == ["ensemble", "1", "1"]
    assert lines[-1] == "(2 rows)"


def test_csv_format(store):
    result = sql(QUERY, "--out", store.root, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["method"], float(r["mean"]), int(r["n"])) for r in rows] == [("baseline", 0.5, 2), ("ensemble", 1.0, 1)]


def test_json_format_and_per_step_curves(store):
    result = sql("select step, avg(score) as mean from steps group by 1 order by 1", "--out", store.root,
                 "--format", "json")
    assert json.loads(result.output) == [{"step": 0, "mean": 0.0}, {"step": 1, "mean": 2 / 6},
                                         {"step": 2, "mean": 2 / 3}]


def test_empty_store_is_a_clear_message(tmp_path):
    result = sql("select * from runs", "--out", str(tmp_path / "nothing"))
    assert result.exit_code == 2
    assert "is empty: no sweep has written results there yet" in result.output
    assert "Traceback" not in result.output


def test_only_select_statements_run(store, tmp_path):
    target = tmp_path / "results" / "runs" / "part-evil.parquet"
    result = sql(f"copy runs to '{target}' (format parquet)", "--out", store.root)
    assert result.exit_code == 2 and "SELECT statements only" in result.output
    assert not target.exists()
    result = sql("select nonsense from runs", "--out", store.root)
    assert result.exit_code == 2 and "query failed" in result.output


def test_compact_command(store):
    result = CliRunner().invoke(main, ["compact", "--out", store.root])
    assert result.exit_code == 0 and "runs: 3 file(s) -> 1 (3 rows)" in result.output
    assert sql(QUERY, "--out", store.root, "--format", "csv").output.splitlines() == [
        '"method","mean","n"', '"baseline",0.5,2', '"ensemble",1,1']


def test_sql_imports_no_torch_diffusers_or_ray(store):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from cos_ray.cli import main\n"
        f"result = CliRunner().invoke(main, ['sql', 'select count(*) from runs', '--out', {store.root!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'ray', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
