"""`cos-ray submit --address` on a head whose job agent is not up: asked again for a bounded time, then one line.

A head node that has just started answers submissions with HTTP 500 "No available agent to submit job, please try
again later" until its dashboard agent has registered its address (Ray's job server waits 10 s for it per request).
The window is made deterministic on a real head started for this module: a driver process takes the agent's address
out of the head's KV store (where the agent wrote it at start-up) before anything is submitted, so the job server
answers exactly as it does before registration; putting it back is the agent registering. A fresh head is needed:
the job server remembers the agent once it has used it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from test_jobs_cluster import PORT_FLAGS, _env, _free_ports, _py, _stop_head

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HIDE_AGENT = r"""
import sys, ray
from ray._private.ray_constants import KV_NAMESPACE_DASHBOARD as NS
from ray.dashboard.consts import DASHBOARD_AGENT_ADDR_NODE_ID_PREFIX as PREFIX
from ray.experimental import internal_kv as kv
ray.init(address=sys.argv[1], log_to_driver=False)
key = f"{PREFIX}{ray.get_runtime_context().get_node_id()}"
import time
deadline = time.monotonic() + 60
while not kv._internal_kv_get(key, namespace=NS):  # the agent writes it once, at start-up
    assert time.monotonic() < deadline, "the head's agent never registered"
    time.sleep(0.2)
value = kv._internal_kv_get(key, namespace=NS)
kv._internal_kv_del(key, namespace=NS)
print("hidden", flush=True)
sys.stdin.readline()  # the test says when the agent "registers"
kv._internal_kv_put(key, value, namespace=NS)
print("restored", flush=True)
"""


@pytest.fixture(scope="module")
def fresh_head():
    """(job server address, GCS address) of a head started for this module, nothing submitted to it yet."""
    from ray.job_submission import JobSubmissionClient

    temp_dir = tempfile.mkdtemp(prefix="cra-", dir="/tmp")
    ports = _free_ports(len(PORT_FLAGS))
    command = ["ray", "start", "--head", "--block", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
               "--num-cpus=1", "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={temp_dir}",
               *[f"{flag}={port}" for flag, port in zip(PORT_FLAGS, ports)]]
    log = open(Path(temp_dir) / "head.log", "w")
    proc = subprocess.Popen(command, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{ports[1]}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (Path(temp_dir) / "head.log").read_text()
            try:
                JobSubmissionClient(address)
                break
            except Exception:
                assert time.monotonic() < deadline, f"the head's job server did not answer; log: {temp_dir}/head.log"
                time.sleep(0.5)
        yield address, f"127.0.0.1:{ports[0]}"
    finally:
        _stop_head(proc, temp_dir)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text("name: early\nmodel: tiny\ntasks: {generate: {family: maze, n: 1, seed: 0}}\nmethods: [baseline]\n")
    return path


def test_submit_asks_again_while_the_agent_is_not_up_then_says_what_to_check(fresh_head, spec):
    from cos_ray.cluster.errors import WaitTimeout
    from cos_ray.jobs.client import JobTimeouts
    from cos_ray.jobs.submit import submit_and_follow

    address, gcs = fresh_head
    hider = subprocess.Popen([sys.executable, "-c", HIDE_AGENT, gcs], env=_env(), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert hider.stdout.readline().strip() == "hidden"

        # The agent never comes within the bound: a one-line error saying what to check, in bounded time.
        start = time.monotonic()
        with pytest.raises(WaitTimeout) as refused:
            submit_and_follow(address, spec, "s3://bucket/early", "never", wait=False,
                              entrypoint=_py("print('never runs')"), timeouts=JobTimeouts(agent=5))
        elapsed = time.monotonic() - start
        message = str(refused.value)
        assert "\n" not in message and "No available agent to submit job, please try again later" in message
        assert "the head node's job agent is not up; check `ray status`" in message
        assert elapsed < 5 + 10 + 15  # the bound, plus the server's own 10 s wait for the request in flight

        # `cos-ray submit --address` while the agent is not up: it says it asks again, and succeeds once it is.
        client = subprocess.Popen([sys.executable, "-m", "cos_ray.cli", "submit", str(spec), "--address", address,
                                   "--out", "s3://bucket/early", "--no-wait"], env=_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        seen = []
        for line in client.stdout:
            seen.append(line)
            if "has no job agent yet" in line:
                break
        assert any("asking again for up to 60 s" in line for line in seen), "".join(seen)
        hider.stdin.write("go\n")
        hider.stdin.flush()
        assert hider.stdout.readline().strip() == "restored"
        rest, _ = client.communicate(timeout=120)
        output = "".join(seen) + rest
    finally:
        hider.kill()
        hider.wait(10)
    assert client.returncode == 0, output
    assert "Submitted job early-1" in output and "Traceback" not in output
    listed = subprocess.run([sys.executable, "-m", "cos_ray.cli", "list", "--address", address], env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert "never" not in listed.stdout and "early-1" in listed.stdout, listed.stdout + listed.stderr

