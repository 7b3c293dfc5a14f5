"""The Streamlit app (`cos_ray/dashboard/app.py`) under `streamlit.testing.v1.AppTest`: every view renders without exception
on a real tiny sweep's store and shows the numbers computed here from its Parquet files; the probes view on a store
with probe rows; the SQL box refuses what it must; `cos-ray dashboard` checks the store and passes streamlit's exit
code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from test_dashboard_stores import ENERGY_LAYERS, STEPS, overall, read, write_probe_store

from cos_ray.dashboard.server import APP  # the app inside the installed package

TIMEOUT = 180  # seconds per script run: 2 shared cores, and the first run imports streamlit, pyarrow, duckdb, scipy
HEADERS = {"Sweeps": "Sweeps", "Runs": "Runs", "Compare": "Method comparison", "Chain-of-Steps": "Chain-of-Steps",
           "Probes": "Probes", "SQL": "SQL"}


def open_app(store: Path | str):
    """The app on `store`: the script reads $COS_RAY_STORE on every run, so callers keep it set (`store_env`)."""
    from streamlit.testing.v1 import AppTest

    assert os.environ.get("COS_RAY_STORE") == str(store)
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()


@pytest.fixture()
def store_env(monkeypatch):
    return lambda store: monkeypatch.setenv("COS_RAY_STORE", str(store))


def show(app, view: str):
    app.sidebar.radio(key="view").set_value(view).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.header[0].value == HEADERS[view]
    return app


def metrics(app) -> dict:
    return {metric.label: metric.value for metric in app.metric}


def store_files(store: Path) -> list[str]:
    return sorted(str(path.relative_to(store)) for path in store.rglob("*"))


@pytest.fixture(scope="module")
def sweep_app(small_sweep):
    _, store, _ = small_sweep
    previous = os.environ.get("COS_RAY_STORE")
    os.environ["COS_RAY_STORE"] = str(store)
    yield store, open_app(store)
    if previous is None:
        os.environ.pop("COS_RAY_STORE", None)
    else:
        os.environ["COS_RAY_STORE"] = previous


@pytest.mark.timeout(600)
def test_sweeps_and_runs_views_show_the_store(sweep_app):
    store, app = sweep_app
    runs, steps, sweeps = read(store, "runs").to_pylist(), read(store, "steps"), read(store, "sweeps").to_pylist()
    show(app, "Sweeps")
    assert metrics(app) == {"Sweeps": "1", "Runs": f"{len(runs)}", "Step rows": f"{steps.num_rows:,}"}
    table = app.dataframe[0].value
    assert list(table["sweep_id"]) == [sweeps[0]["sweep_id"]]
    assert table["status"][0] == "done" and table["progress"][0] == 1.0 and table["runs"][0] == len(runs)

    show(app, "Runs")
    scores = [row["score"] for row in runs]
    assert metrics(app) == {"Runs": "12", "OK": "12", "Failed": "0", "Mean score": f"{np.mean(scores):.4f}",
                            "Mean overall": f"{np.mean([overall(row) for row in runs]):.4f}"}
    page = app.dataframe[0].value
    assert sorted(page["run_id"]) == sorted(row["run_id"] for row in runs)

    app.sidebar.multiselect(key="f_method").set_value(["baseline"]).run()
    assert metrics(app)["Runs"] == str(sum(row["method"] == "baseline" for row in runs)) == "4"
    assert set(app.dataframe[0].value["method"]) == {"baseline"}
    app.selectbox(key="runs_video").set_value(app.dataframe[0].value["run_id"][0]).run()
    assert not app.exception and app.get("video"), "the chosen run's video is shown"
    app.sidebar.multiselect(key="f_method").set_value([]).run()


@pytest.mark.timeout(600)
def test_compare_view_shows_means_and_paired_differences(sweep_app):
    store, app = sweep_app
    runs = read(store, "runs").to_pylist()
    show(app, "Compare")
    assert [sub.value for sub in app.main.subheader] == ["Score: score", "Score: score_overall"]
    for index, value in ((0, lambda row: row["score"]), (2, overall)):  # per kind: comparison, then best of N
        table = app.dataframe[index].value
        by_method = defaultdict(list)
        for row in runs:
            by_method[row["method"]].append(value(row))
        assert list(table["setting"].str.split(" ").str[0]) == ["baseline", "ensemble"]
        assert list(table["runs"]) == [4, 8]
        np.testing.assert_allclose(table["mean"], [np.mean(by_method["baseline"]), np.mean(by_method["ensemble"])])
        assert table["pairs"][1] == 4
        best = app.dataframe[index + 1].value
        assert list(best["units"]) == [2] and list(best["size"]) == [2]


@pytest.mark.timeout(600)
def test_chain_of_steps_view_shows_curves_lock_in_and_filmstrips(sweep_app):
    store, app = sweep_app
    runs = {row["run_id"]: row for row in read(store, "runs").to_pylist()}
    show(app, "Chain-of-Steps")
    groups = defaultdict(list)
    for row in read(store, "steps").to_pylist():
        if row["score"] is not None:
            groups[(runs[row["run_id"]]["method"], row["step"])].append(row["score"])
    curves = app.dataframe[0].value
    assert len(curves) == len(groups)
    for row in curves.itertuples():
        assert row.runs == len(groups[(row.method, row.step)])
        assert np.isclose(row.mean, np.mean(groups[(row.method, row.step)]))
    lock = app.dataframe[1].value
    assert list(lock["method"]) == ["baseline", "ensemble"] and list(lock["runs"]) == [4, 8]
    assert list(lock["locked"]) == [sum(r["method"] == m and r["lock_in_step"] is not None for r in runs.values())
                                    for m in ("baseline", "ensemble")]
    assert len(app.get("image")) == 1, "one filmstrip by default"
    second = app.selectbox(key="chain_run_b").options[2]
    app.selectbox(key="chain_run_b").set_value(second).run()
    assert not app.exception and len(app.get("image")) == 2, "two runs side by side"
    assert any(second in block.value for block in app.markdown)


@pytest.mark.timeout(600)
def test_probes_view_says_when_the_store_has_none(sweep_app):
    _, app = sweep_app
    show(app, "Probes")
    assert any("no probe runs in this store" in info.value for info in app.info)


@pytest.mark.timeout(600)
def test_sql_view_runs_selects_and_refuses_the_rest(sweep_app, tmp_path):
    store, app = sweep_app
    runs = read(store, "runs").to_pylist()
    show(app, "SQL")
    table = app.dataframe[0].value
    assert dict(zip(table["method"], table["runs"])) == {"baseline": 4, "ensemble": 8}
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    before = store_files(store)
    refused = [f"COPY runs TO '{store}/runs/part-stolen.parquet'", f"COPY (SELECT 1) TO '{tmp_path}/out.csv'",
               f"ATTACH '{tmp_path}/x.db'", "INSTALL httpfs", "CREATE TABLE t AS SELECT 1",
               "SELECT 1; DROP VIEW runs"]
    for sql in refused:
        app.text_area(key="sql_text").input(sql)
        app.button[0].click().run()
        assert not app.exception
        assert any("SELECT statements only" in error.value for error in app.error), sql
    for sql in (f"SELECT * FROM read_csv('{secret}')", "SELECT * FROM read_text('/etc/passwd')"):
        app.text_area(key="sql_text").input(sql)
        app.button[0].click().run()
        assert any("refused" in error.value and "hunter2" not in error.value for error in app.error), sql
        assert not app.dataframe
    assert store_files(store) == before
    app.text_area(key="sql_text").input("SELECT count(*) AS n FROM runs WHERE score IS NOT NULL")
    app.button[0].click().run()
    assert not app.error and list(app.dataframe[0].value["n"]) == [sum(r["score"] is not None for r in runs)]


@pytest.mark.timeout(600)
def test_probes_view_on_a_store_with_probes(tmp_path, store_env):
    root = write_probe_store(tmp_path / "store")
    store_env(root)
    runs = read(root, "runs").to_pylist()
    app = open_app(root)
    show(app, "Probes")
    subheaders = [sub.value for sub in app.main.subheader]
    assert subheaders == ["Noise at step vs noise at frame", "Sensitivity (CKA dissimilarity to the clean run)",
                          "Layer activation energy", "Latent swap outcome by layer"]
    noise, swap = app.dataframe[0].value, app.dataframe[1].value
    for table, keys in ((noise, {"noise_at_step": "step", "noise_at_frame": "frame"}), (swap, {"swap": "layer"})):
        for row in table.itertuples():
            values = [r["score"] for r in runs if r["method"] == row.method
                      and json.loads(r["params"])[keys[row.method]] == row.position]
            assert row.runs == len(values) and np.isclose(row.mean, np.mean(values))
    assert len(noise) == STEPS + 2 and len(swap) == 2
    charts = app.get("vega_lite_chart")
    assert len(charts) == 5  # noise, CKA, energy layers x steps, energy layers x frames, swap
    assert len(ENERGY_LAYERS) == 4


@pytest.mark.timeout(300)
def test_a_missing_store_is_reported_on_the_page(tmp_path, store_env):
    store_env(tmp_path / "nowhere")
    app = open_app(tmp_path / "nowhere")
    assert not app.exception
    assert any("does not exist" in error.value for error in app.error)


@pytest.mark.timeout(300)
def test_the_app_imports_no_torch(tmp_path):
    root = write_probe_store(tmp_path / "store")
    script = (
        "import os, sys\n"
        f"os.environ['COS_RAY_STORE'] = {str(root)!r}\n"
        "from streamlit.testing.v1 import AppTest\n"
        "for view in " + repr(list(HEADERS)) + ":\n"
        f"    app = AppTest.from_file({str(APP)!r}, default_timeout={TIMEOUT})\n"
        "    app.query_params['view'] = view\n"
        "    app.run()\n"
        "    assert app.header[0].value == " + repr(HEADERS) + "[view], (view, app.header[0].value)\n"
        "    assert not app.exception, [e.value for e in app.exception]\n"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT * 2)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False False"


def test_cli_refuses_a_missing_store(tmp_path):
    from cos_ray.cli import main

    result = CliRunner().invoke(main, ["dashboard", "--out", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_cli_runs_streamlit_headless_and_passes_its_exit_code(tmp_path, monkeypatch):
    """The child's command line is Streamlit's, headless, on the port asked for; its exit code is the command's (a
    real child that exits 3 stands in for Streamlit; the signal handlers the command installs are put back)."""
    import signal

    import cos_ray.cli.dashboard as cli_dashboard
    from cos_ray.cli import main
    from cos_ray.dashboard.server import die_with_parent, streamlit_command

    (tmp_path / "store").mkdir()
    calls = []

    def exits_3(out, port, address):
        calls.append(streamlit_command(out, port, address))
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"], preexec_fn=die_with_parent)

    monkeypatch.setattr(cli_dashboard, "start_streamlit", exits_3)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        result = CliRunner().invoke(main, ["dashboard", "--out", str(tmp_path / "store"), "--port", "8765"])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert result.exit_code == 3, result.output
    (command,) = calls
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(APP)
    pairs = dict(zip(command[5::2], command[6::2]))
    assert pairs["--server.headless"] == "true" and pairs["--server.port"] == "8765"
    assert pairs["--server.address"] == "127.0.0.1"
    assert command[-3:] == ["--", "--out", str(tmp_path / "store")]
