"""Sweeps as Ray Jobs against a real `ray start --head` on loopback: submit, follow, status, logs, stop, list, attach.

The head is started once for the module, on free ports and its own --temp-dir, with token auth disabled explicitly
(a token file left by an earlier `ray.init()` would otherwise turn it on), and torn down through its own process
group: never `ray stop`, which would kill every Ray process on the machine, other tests' clusters included. The head
runs from this machine's Python (cos_ray is installed there), with the session's preset cache and one torch thread.

The submission machinery is shown with small stand-in entrypoints through the same path (`submit_and_follow`); real
sweeps (`write_small_sweep`: 8 units of the tiny preset) run as jobs through `cos-ray submit --address`, stopped then
resubmitted, and their tables are compared with the same spec run in-process (`small_sweep`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import write_small_sweep
from process_groups import stop_group
from cos_ray.jobs.submit import submit_and_follow
from cos_ray.errors import UsageError
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql
from cos_ray.store.schema import VOLATILE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PORT_FLAGS = ["--port", "--dashboard-port", "--ray-client-server-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
              "--object-manager-port", "--node-manager-port"]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _env(**extra) -> dict:
    """The test subprocesses' environment: auth off explicitly, no inherited cluster address, this Python first."""
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    env.update(RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0",
               PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""), **extra)
    return env


def _own_processes(marker: str) -> list[int]:
    """PIDs whose command line names our head's temp dir (its workers, whatever process group they moved to)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def head(preset_cache):
    """The job server's address (http://127.0.0.1:PORT) of a head started for this module only.

    Its jobs' drivers and workers inherit the head's environment: the session's preset cache, one torch thread.
    """
    from ray.job_submission import JobSubmissionClient

    temp_dir = tempfile.mkdtemp(prefix="crj-", dir="/tmp")  # short: Ray's unix sockets live under it
    ports = _free_ports(len(PORT_FLAGS))
    command = ["ray", "start", "--head", "--block", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
               "--num-cpus=4", "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={temp_dir}",
               *[f"{flag}={port}" for flag, port in zip(PORT_FLAGS, ports)]]
    log = open(Path(temp_dir) / "head.log", "w")
    env = _env(COS_RAY_CACHE=str(preset_cache), COS_RAY_CPU_THREADS="1")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{ports[1]}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ray start --head exited with {proc.returncode}: {(Path(temp_dir) / 'head.log').read_text()}")
            try:
                JobSubmissionClient(address)
                break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"the head's job server did not answer within 90 s; log: {temp_dir}/head.log")
                time.sleep(0.5)
        yield address
    finally:
        _stop_head(proc, temp_dir)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _stop_head(proc: subprocess.Popen, temp_dir: str) -> None:
    """Terminate the head we started: its process group, then anything still naming its temp dir."""
    stop_group(proc, grace_s=10)
    for pid in _own_processes(temp_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def spec(tmp_path) -> Path:
    """A spec with a relative task folder (shipped with the job) and one outside the runs (absolute, not shipped)."""
    (tmp_path / "tasks" / "maze" / "00000").mkdir(parents=True)
    (tmp_path / "tasks" / "maze" / "00000" / "prompt.txt").write_text("solve the maze\n")
    path = tmp_path / "sweep.yaml"
    path.write_text("name: demo\nmodel: tiny\ntasks: tasks/\nmethods: [baseline]\n")
    return path


def _py(code: str) -> str:
    """An entrypoint running `code` with the cluster's Python (as the sweep's entrypoint does)."""
    return shlex.join(["python", "-c", code])


def cli(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cos_ray.cli", *args], env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _status(address: str, sweep: str) -> str:
    result = cli("status", sweep, "--address", address)
    assert result.returncode == 0, result.stderr
    return next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("status:"))


def test_submit_follows_logs_and_exits_with_the_jobs_result(head, spec, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9")  # an explicit address wins over RAY_ADDRESS
    shows = _py("import os; print('files', sorted(os.listdir('.')), os.listdir('tasks/maze/00000'), "
                "os.environ['COS_RAY_SUBMISSION_ID'])")
    assert submit_and_follow(head, spec, str(tmp_path / "results"), "ok", entrypoint=shows) == 0
    printed = capsys.readouterr()
    assert "files ['sweep.yaml', 'tasks'] ['prompt.txt'] ok-1" in printed.out  # spec and tasks shipped, cwd = them
    assert "Submitted job ok-1" in printed.out
    assert f"cos-ray logs ok -f --address {head}" in printed.out and "cos-ray stop ok" in printed.out
    assert "shared storage" in printed.err  # an absolute local --out: a warning, not an error

    failing = _py("import sys; print('about to fail'); sys.exit(3)")
    assert submit_and_follow(head, spec, "s3://bucket/sweeps/ok", "ok", entrypoint=failing) == 1
    printed = capsys.readouterr()
    assert "Submitted job ok-2" in printed.out and "about to fail" in printed.out and "FAILED" in printed.out
    assert printed.err == ""  # s3:// needs no warning

    listed = cli("list", "--address", head)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[2] for line in listed.stdout.splitlines()[1:]}
    assert rows["ok-1"] == "SUCCEEDED" and rows["ok-2"] == "FAILED"
    assert "s3://bucket/sweeps/ok" in listed.stdout
    logs = cli("logs", "ok-1", "--address", head)  # a job by its submission id
    assert "files ['sweep.yaml', 'tasks']" in logs.stdout


def test_killed_client_leaves_the_job_running_and_resubmitting_attaches(head, spec, capsys):
    entry = _py("import time; print('unit 1 done', flush=True); time.sleep(90)")
    client_code = ("import sys; from cos_ray.jobs.submit import submit_and_follow; "
                   f"sys.exit(submit_and_follow({head!r}, {str(spec)!r}, 's3://b/long', 'long', entrypoint={entry!r}))")
    follower = subprocess.Popen([sys.executable, "-c", client_code], env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        deadline = time.monotonic() + 60
        for line in follower.stdout:  # the client follows the job's log...
            seen.append(line)
            if "unit 1 done" in line or time.monotonic() > deadline:
                break
        assert any("unit 1 done" in line for line in seen), "".join(seen)
    finally:
        follower.kill()  # ...and dies mid-job
        follower.wait(10)
    assert _status(head, "long") == "RUNNING"

    assert submit_and_follow(head, spec, "s3://b/long", "long", wait=False, entrypoint=_py("print('new')")) == 0
    assert "attached" in capsys.readouterr().out
    assert "long-2" not in cli("list", "--address", head).stdout

    stopped = cli("stop", "long", "--address", head)
    assert stopped.returncode == 0 and "long-1 STOPPED" in stopped.stdout, stopped.stdout + stopped.stderr
    assert "nothing to stop" in cli("stop", "long", "--address", head).stdout

    assert submit_and_follow(head, spec, "s3://b/long", "long", wait=False,
                             entrypoint=_py("print('resumed from the store')")) == 0
    assert "Submitted job long-2" in capsys.readouterr().out
    followed = cli("logs", "long", "-f", "--timeout", "60", "--address", head, timeout=90)
    assert "resumed from the store" in followed.stdout and "long-2 SUCCEEDED" in followed.stderr
    assert _status(head, "long") == "SUCCEEDED"
    overview = cli("status", "--address", head)
    assert any(line.split()[:3] == ["long", "long-2", "SUCCEEDED"] for line in overview.stdout.splitlines())


def test_relative_out_is_refused_before_anything_is_submitted(head, spec):
    with pytest.raises(UsageError, match="--out"):
        submit_and_follow(head, spec, "results/here", "refused")
    assert "refused" not in cli("list", "--address", head).stdout


def rows(store_path, table: str, units=None) -> list[dict]:
    """A table's rows (of `units` only, if given) in a stable order, without the columns that legitimately differ
    between submissions; `spec_hash` too: the job specs here differ from the reference's by their name (each test
    has its own sweep, so its own job ids), which is no part of a unit."""
    key = "run_id" if table == "runs" else "run_id, step"
    result = run_sql(Store(store_path), f"select * from {table} order by {key}").to_pylist()
    skip = {*VOLATILE[table], "spec_hash", "cos_ray_commit"}  # the checkout's commit may move on while a test runs
    return [{k: v for k, v in row.items() if k not in skip} for row in result
            if units is None or row["unit_id"] in units]


def finished_units(store_path: Path) -> int:
    """Units whose runs rows are committed (a unit's runs commit marks it done; read by delta-rs from the log)."""
    folder = store_path / "runs"
    if not (folder / "_delta_log").is_dir():
        return 0
    from deltalake import DeltaTable

    rows = DeltaTable(str(folder)).to_pyarrow_dataset().to_table(columns=["unit_id"])
    return len(set(rows.column("unit_id").to_pylist()))


def job_sweep(folder: Path, name: str, seeds: str = "[0]", groups: int = 2) -> tuple[Path, set]:
    """`write_small_sweep` under its own sweep name (so its own job ids), `seeds` of the reference's, on `groups`
    worker groups: neither the name, the seed list nor the number of groups is part of a unit id, so its units are
    the reference's (all 8 of them with seeds [0, 1]). (spec, its unit ids)"""
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec

    spec = write_small_sweep(folder, seeds=seeds)
    text = spec.read_text().replace("name: small\n", f"name: {name}\n").replace("groups: 2", f"groups: {groups}")
    spec.write_text(text)
    return spec, {unit.unit_id for unit in expand(load_spec(spec))}


def assert_same_tables(out: Path, reference: Path, units: set) -> None:
    for table in ("runs", "steps"):
        got, expected = rows(out, table), rows(reference, table, units)
        assert got and len(got) == len(expected), f"{table}: {len(got)} rows vs {len(expected)}"
        assert got == expected, table
    assert len(run_sql(Store(out), "select distinct spec_hash from runs")) == 1  # every unit from the same spec


def test_a_sweep_job_stopped_then_resubmitted_equals_the_same_sweep_run_here(small_sweep, head, tmp_path,
                                                                             monkeypatch):
    """A sweep run as a job (its first part by job 1, stopped mid-way; the rest by job 2, followed to its end) ends
    with the tables of the same sweep run in this process. One sweep serves both claims: a second, uninterrupted job
    sweep would cost a driver and its worker groups again."""
    from click.testing import CliRunner

    from cos_ray.cli import main

    _, reference, _ = small_sweep
    # All 8 units, one after the other: once the model is loaded a unit takes a second or two, which leaves the stop
    # below time to land mid-way.
    (spec, units), out = job_sweep(tmp_path / "spec", "stopped", seeds="[0, 1]", groups=1), tmp_path / "results"
    started = cli("submit", str(spec), "--address", head, "--out", str(out), "--no-wait")
    assert started.returncode == 0 and "Submitted job stopped-1" in started.stdout, started.stdout + started.stderr

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    deadline = time.monotonic() + 150
    while finished_units(out) < 1:  # stop it mid-way: once its first unit is in the store
        assert time.monotonic() < deadline, cli("logs", "stopped", "--address", head).stdout
        time.sleep(0.1)
    stopped = CliRunner().invoke(main, ["stop", "stopped", "--address", head])  # `cos-ray stop`, imports warm
    assert stopped.exit_code == 0 and "job stopped-1 STOPPED" in stopped.output, stopped.output
    assert _status(head, "stopped") == "STOPPED"
    before = finished_units(out)
    assert before < len(units), "the sweep finished before it was stopped: nothing left to resume"
    sweep = run_sql(Store(out), "select status, done from sweeps").to_pylist()
    assert sweep == [{"status": "interrupted", "done": before}], cli("logs", "stopped-1", "--address", head).stdout
    # SIGTERM from `cos-ray stop` reached the driver's handler: workers killed, the sweep marked interrupted

    resumed = cli("submit", str(spec), "--address", head, "--out", str(out), timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Submitted job stopped-2" in resumed.stdout and "Job stopped-2 SUCCEEDED" in resumed.stdout
    assert f"cos-ray logs stopped -f --address {head}" in resumed.stdout  # the next steps
    assert (f"{len(units)} unit(s): {before} already done, {len(units) - before} ran, 0 failed -> {out}"
            in resumed.stdout)  # the job's own output, followed
    assert "shared storage" in resumed.stderr  # a local --out works on one machine only: warned
    assert_same_tables(out, reference, units)
    sweeps = run_sql(Store(out), "select name, status, done from sweeps").to_pylist()
    assert sweeps == [{"name": "stopped", "status": "done", "done": len(units)}]

    listed = cli("list", "--address", head).stdout
    statuses = {line.split()[0]: line.split()[2] for line in listed.splitlines()[1:]}
    assert statuses["stopped-1"] == "STOPPED" and statuses["stopped-2"] == "SUCCEEDED", listed
