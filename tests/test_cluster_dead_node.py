"""A node dies mid-sweep: its units run again on the live groups within seconds, and the sweep says what it lacks.

The attack as it was made: a real 2-node Ray cluster on loopback (`ray start --head` and a second `ray start
--address`, each with 1 CPU: room for exactly 2 worker groups of one 0.5-CPU worker each), a real sweep (`cos-ray
submit --local` with RAY_ADDRESS, as a Ray Job's driver runs it) of 4 groups - 2 on each node -, and the second node's
raylet SIGKILLed once the first units are in the store. Every process gets RAY_AUTH_MODE=disabled explicitly (a token
file left by an earlier `ray.init()` would turn auth on). The sweep keeps Ray's default start timeout (600 s): the
dead node's groups cannot be rebuilt anywhere (the head is full), so the sweep must say so and finish on the head's
two groups far sooner than that timeout, every run exactly once, no traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import write_small_sweep
from process_groups import stop_group
from test_jobs_cluster import _env, _free_ports, _own_processes, finished_units

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

START_TIMEOUT_S = 600  # Timeouts().start, what a rebuild on the dead node's resources would have waited for
AFTER_KILL_BOUND_S = 150  # the units left after the kill must end within this (seconds of detection, then the units)
NODE_PORTS = ["--node-manager-port", "--object-manager-port", "--metrics-export-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--runtime-env-agent-port"]
HEAD_PORTS = ["--port", "--ray-client-server-port", *NODE_PORTS]
SEEDS = "[0, 1, 2, 3, 4, 5, 6, 7]"  # x 2 mazes, baseline only: 16 units of one run each


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_nodes(address: str, count: int, procs, temp_dir: str, timeout: float = 120) -> None:
    """Until the cluster at `address` has `count` live nodes (asked by a short-lived driver process)."""
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
             "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"a `ray start` exited with {proc.returncode}; logs in {temp_dir}")
        seen = subprocess.run([sys.executable, "-c", probe, address], env=_env(), capture_output=True, text=True,
                              timeout=60)
        if seen.returncode == 0 and seen.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(1)
    pytest.fail(f"the cluster did not show {count} live nodes within {timeout:g} s; logs in {temp_dir}")


def _raylet_of(proc: subprocess.Popen) -> int:
    """The pid of the raylet that `ray start --block` (proc) started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == proc.pid and cmdline.endswith("/raylet"):
            return int(entry.name)
    raise AssertionError(f"no raylet under `ray start` pid {proc.pid}")


@pytest.fixture
def two_nodes(preset_cache, tiny_model):
    """(GCS address, the second node's `ray start` process): a head and a second node, 1 CPU each, on loopback."""
    temp_dir = tempfile.mkdtemp(prefix="crd-", dir="/tmp")  # short: Ray's unix sockets live under it
    env = _env(COS_RAY_CACHE=str(preset_cache), COS_RAY_CPU_THREADS="1")  # the workers inherit the raylets' env
    head_ports, node_ports = _free_ports(len(HEAD_PORTS)), _free_ports(len(NODE_PORTS))
    address = f"127.0.0.1:{head_ports[0]}"
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
              f"--temp-dir={temp_dir}"]
    head = _start(["ray", "start", "--head", "--include-dashboard=false", *common,
                   *[f"{flag}={port}" for flag, port in zip(HEAD_PORTS, head_ports)]], env, Path(temp_dir) / "head.log")
    node = None
    try:
        _wait_for_nodes(address, 1, [head], temp_dir)
        node = _start(["ray", "start", f"--address={address}", *common,
                       *[f"{flag}={port}" for flag, port in zip(NODE_PORTS, node_ports)]], env,
                      Path(temp_dir) / "node.log")
        _wait_for_nodes(address, 2, [head, node], temp_dir)
        yield address, node
    finally:
        for proc in (node, head):
            if proc is not None:
                stop_group(proc, grace_s=10)
        for pid in _own_processes(temp_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_dead_node_costs_seconds_and_the_sweep_says_what_it_lacks(two_nodes, tmp_path):
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql

    address, node = two_nodes
    spec = write_small_sweep(tmp_path / "spec", seeds=SEEDS)
    text = spec.read_text().replace("groups: 2", "groups: 4")
    text = text.replace("  - ensemble: {size: 2, layers: 20-29, steps: 0-1, merge: update}\n", "")
    spec.write_text(text.replace("probes:\n  x0: {every: 2, decode: true}\n", ""))
    units = expand(load_spec(spec))
    assert len(units) == 16 and all(len(unit.seeds) == 1 for unit in units)
    out = tmp_path / "results"

    sweep = subprocess.Popen([sys.executable, "-m", "cos_ray.cli", "submit", str(spec), "--out", str(out), "--local"],
                             env=_env(RAY_ADDRESS=address), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while finished_units(out) < 2:  # mid-sweep: the groups are built and running units on both nodes
            assert sweep.poll() is None, sweep.stdout.read()
            assert time.monotonic() < deadline, "no unit finished within 240 s"
            time.sleep(0.2)
        before = finished_units(out)
        os.kill(_raylet_of(node), signal.SIGKILL)  # the second node dies: its 2 groups with it
        killed = time.monotonic()
        output, _ = sweep.communicate(timeout=START_TIMEOUT_S - 60)
        after_kill = time.monotonic() - killed
    finally:
        if sweep.poll() is None:
            stop_group(sweep, grace_s=10)

    print(output)
    print(f"units before the kill: {before}; kill -> sweep's end: {after_kill:.1f} s")
    assert before < len(units), "the sweep finished before the node was killed"
    assert "Traceback" not in output
    assert sweep.returncode == 0, output
    assert "16 unit(s): 0 already done, 16 ran, 0 failed" in output
    # Far below the start timeout that a rebuild waiting on the dead node's resources would have cost.
    assert after_kill < AFTER_KILL_BOUND_S, output
    # The rebuilds asked for what the cluster could not give, and the sweep said so (what it asked, what Ray has).
    assert "the cluster cannot place it now: it asks for 1 worker(s) of {'CPU': 0.5}" in output, output
    assert "ray.available_resources(): free {'CPU': 0.0} of {'CPU': " in output, output  # (Ray may not yet know
    assert "(see `ray status`)" in output  # the node is dead: its health check misses a few heartbeats first)
    # Every run exactly once, all ok.
    store = Store(str(out))
    counts = run_sql(store, "select run_id, count(*) n, min(status) s from runs group by run_id").to_pylist()
    assert len(counts) == 16 and all(row["n"] == 1 and row["s"] == "ok" for row in counts), counts
    assert run_sql(store, "select status from sweeps").to_pylist() == [{"status": "done"}]


def test_a_group_that_cannot_be_rebuilt_fails_the_units_left_at_once(ray_cluster, tiny_model, task, tmp_path):
    """One group; its worker crashes mid-unit and its rebuild fails (`on_build` refuses it): the retry is not sent to
    a dead slot nor left waiting, it fails with `NoGroupLeft` and the notices say what happened."""
    from cos_ray.cluster import faults
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.cluster.errors import GroupFailed, NoGroupLeft
    from cos_ray.cluster.waits import Timeouts
    from cos_ray.sampler import default_settings
    from cos_ray.spec.unit import Unit

    built, notices = [], []

    def refuse_rebuilds(group):
        built.append(group.name)
        if len(built) > 1:
            raise RuntimeError("no room for a rebuild (injected)")

    timeouts = Timeouts(start=120, load=240, join=60, collective=15, unit=150, control=30)
    unit = Unit(task, default_settings("tiny-a14b").replace(steps=4, frames=5), (3,), layout=(1,))
    with Coordinator("tiny", (1,), device="cpu", timeouts=timeouts, on_build=refuse_rebuilds,
                     on_notice=notices.append) as coordinator:
        faults.inject(coordinator.groups[0], 0, faults.ExitAt(step=1))
        start = time.monotonic()
        outcome = coordinator.run_with_retries(unit, retries=2)
        elapsed = time.monotonic() - start
        assert not outcome.ok and isinstance(outcome.error, NoGroupLeft), outcome.error
        assert [type(attempt.error) for attempt in outcome.attempts] == [GroupFailed, NoGroupLeft]  # not retried
        assert "no worker group left: all 1 failed and could not be rebuilt" in str(outcome.error)
        assert "no room for a rebuild (injected)" in str(outcome.error)
        assert elapsed < 90, elapsed  # a rebuild's load, never a placement timeout
        again = coordinator.run_with_retries(unit, retries=2)  # the next unit: at once, same reason
        assert isinstance(again.error, NoGroupLeft) and again.seconds < 5
    assert len(built) == 2
    assert any("is down; rebuilding it in the background while 0 live group(s) go on" in text for text in notices)
    assert any("could not be rebuilt (RuntimeError: no room for a rebuild (injected))" in text for text in notices)
