"""An embedded Ray cluster ends with its driver (issue 28: nothing is left running): SIGTERM or SIGINT to a process
that started one through `cos_ray.cluster.connect` - with the sweep's own handler (`cos-ray submit`) or none
(`cos-ray verify`, `generate --workers`) - exits with 128 + the signal, without Ray's stack dump, and leaves none of
Ray's processes (GCS, raylet, agents, workers) behind.

Real processes: a driver connects (a fresh local cluster), runs one task, and is signalled; its process tree is read
with psutil before the signal and looked for after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from process_groups import still_running

pytestmark = pytest.mark.timeout(180)

GONE_WITHIN = 5.0  # seconds after the driver exits

DRIVER = """
import os, signal, sys, time
from cos_ray.cluster.connect import connect
if sys.argv[1] == "sweep":  # as `cos-ray submit` does before it connects
    from cos_ray.sweep.runner import request_stop
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
connect(num_cpus=1)
import ray
worker = ray.get(ray.remote(lambda: os.getpid()).remote(), timeout=120)
try:  # the signal may come as soon as the line is out: the wait for it starts before
    print("worker", worker, flush=True)
    time.sleep(300)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("handler,signum,code", [("none", signal.SIGTERM, 143), ("sweep", signal.SIGTERM, 130),
                                                 ("sweep", signal.SIGINT, 130)],
                         ids=["sigterm-no-handler", "sigterm-sweep", "sigint-sweep"])
def test_a_signalled_driver_leaves_no_ray_process(handler, signum, code):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, handler], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    children = []
    try:
        line = driver.stdout.readline()  # blocks until the task ran (or the driver died)
        assert line.startswith("worker"), (line, driver.stderr.read()[-3000:] if driver.poll() is not None else "")
        children = psutil.Process(driver.pid).children(recursive=True)
        assert {"raylet", "gcs_server"} <= {child.name() for child in children}, [c.name() for c in children]
        driver.send_signal(signum)
        assert driver.wait(timeout=60) == code
        exited = time.monotonic()
        while still_running(children) and time.monotonic() - exited < 15:
            time.sleep(0.1)
        left, after = still_running(children), time.monotonic() - exited
        stderr = driver.stderr.read()
    finally:
        for process in still_running(children) + ([psutil.Process(driver.pid)] if driver.poll() is None else []):
            process.kill()
    assert not left and after <= GONE_WITHIN, (after, [p.name() for p in left])
    assert "Traceback" not in stderr and "SIGTERM received" not in stderr, stderr[-3000:]
